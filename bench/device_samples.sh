#!/usr/bin/env bash
# On the device machine (carry .whl): run the test suite there (Python 3.12, CUDA torch),
# capture sample GPU runs of every example and its fixed version, time both unprofiled
# (interleaved rounds, steady state), and probe the profiler's overhead.
# PHASES picks what runs (default: "tests capture steptime probe"); each phase prints its
# wall time so calls can be sized under the device's 10-minute limit.
# Writes $OUT/pytest.log, $OUT/samples.tar.gz, $OUT/steptimes.jsonl, $OUT/probe.json.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
mkdir -p /tmp/samples
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch,sys,os; print('torch', torch.__version__, 'python', sys.version.split()[0], 'cpus', os.cpu_count())"
PHASES=${PHASES:-tests capture steptime probe}
EXAMPLES=${EXAMPLES:-$(ls examples/*.py | grep -v '\.fixed\.py$')}
STEPS="--steps ${STEPS:-200}"
t=$(date +%s); lap() { echo "== $1 took $(( $(date +%s) - t )) s"; t=$(date +%s); }
for phase in $PHASES; do case $phase in
tests)
  (cd /tmp && timeout ${TEST_TIMEOUT:-300} python3 -m pytest -q -p no:cacheprovider "$OLDPWD/tests" > $OUT/pytest.log 2>&1)
  tail -3 $OUT/pytest.log; lap tests ;;
capture)
  for ex in $EXAMPLES; do
    for v in ${ex%.py} ${ex%.py}.fixed; do
      [ -f $v.py ] || continue
      timeout 120 python3 -m trainprof.cli analyze $v.py --run-dir /tmp/samples/$(basename $v) -q -- $STEPS || echo "FAILED analyze $v"
    done
  done
  for d in /tmp/samples/*; do cp examples/$(basename $d).py $d/ 2>/dev/null; rm -f $d/output.log $d/report.html; done
  tar -C /tmp -czf $OUT/samples.tar.gz samples
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
  lap capture ;;
steptime)
  for r in $(seq 1 ${ROUNDS:-3}); do
    for ex in $EXAMPLES; do
      for v in ${ex%.py} ${ex%.py}.fixed; do
        [ -f $v.py ] || continue
        STEPTIME_SKIP=${SKIP:-40} STEPTIME_STEPS=${TIMED:-30} timeout 120 python3 bench/steptime.py $v.py $STEPS 2>/dev/null | tail -1 >> $OUT/steptimes.jsonl
      done
    done
    lap "steptime round $r"
  done
  cat $OUT/steptimes.jsonl ;;
probe)
  timeout 120 python3 bench/probe_overhead.py > $OUT/probe.json 2>/dev/null; cat $OUT/probe.json; lap probe ;;
esac; done
