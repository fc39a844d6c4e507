#!/usr/bin/env bash
# On the device machine: run the test suite there (Python 3.12, CUDA torch), capture
# sample GPU runs of every example and its fixed version, time both unprofiled
# (interleaved rounds, steady state), and probe the profiler's overhead and bf16 ratios.
# Writes $OUT/pytest.log, $OUT/samples.tar.gz, $OUT/steptimes.jsonl, $OUT/probe.json.
#   device run, carry .whl:  bash bench/device_samples.sh
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
mkdir -p /tmp/samples
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch,sys,os; print('torch', torch.__version__, 'python', sys.version.split()[0], 'cpus', os.cpu_count())"
if [ -z "${SKIP_TESTS:-}" ]; then
  (cd /tmp && python3 -m pytest -q -p no:cacheprovider "$OLDPWD/tests" 2>&1 | tail -40 > $OUT/pytest.log)
  tail -3 $OUT/pytest.log
fi
STEPS="--steps ${STEPS:-200}"
for ex in ${EXAMPLES:-examples/*.py}; do
  case $ex in *.fixed.py) continue;; esac
  name=$(basename $ex .py)
  for v in $name $name.fixed; do
    timeout 300 python3 -m trainprof.cli analyze examples/$v.py --run-dir /tmp/samples/$v -q -- $STEPS || echo "FAILED analyze $v"
  done
done
for r in $(seq 1 ${ROUNDS:-3}); do
  for ex in ${EXAMPLES:-examples/*.py}; do
    for v in ${ex%.py} ${ex%.py}.fixed; do
      [ -f $v.py ] || continue
      STEPTIME_SKIP=${SKIP:-40} STEPTIME_STEPS=${TIMED:-60} timeout 300 python3 bench/steptime.py $v.py $STEPS 2>/dev/null | tail -1 >> $OUT/steptimes.jsonl
    done
  done
done
for d in /tmp/samples/*; do cp examples/$(basename $d).py $d/ 2>/dev/null; rm -f $d/output.log $d/report.html; done
tar -C /tmp -czf $OUT/samples.tar.gz samples
python3 bench/probe_overhead.py > $OUT/probe.json 2>/dev/null
for d in /tmp/samples/*; do
  python3 - "$d" <<'PY'
import json, sys
a = json.load(open(sys.argv[1] + "/analysis.json"))
s = a["steps"]; e = a["estimate"] or {}
print(sys.argv[1].split("/")[-1], "unprof", s["unprofiled_ms"], "prof", s["profiled_ms"], "gpu_busy", s["gpu_busy"], "combined", e.get("combined_speedup"))
for f in a["findings"]:
    print("   ", f["rule"], f["line"], f["saving_ms"], f["speedup"], f["message"][:110])
PY
done
cat $OUT/steptimes.jsonl
