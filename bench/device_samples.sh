#!/usr/bin/env bash
# On the device machine: capture sample GPU runs of every example and its fixed
# version, and time both unprofiled (interleaved, 3 rounds). Writes $OUT/samples.tar.gz
# and $OUT/steptimes.jsonl.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
mkdir -p /tmp/samples
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch,sys; print('torch', torch.__version__, 'python', sys.version.split()[0])"
STEPS="--steps 80"
for ex in examples/*.py; do
  case $ex in *.fixed.py) continue;; esac
  name=$(basename $ex .py)
  python3 -m trainprof.cli analyze $ex --run-dir /tmp/samples/$name -q -- $STEPS || echo "FAILED analyze $name"
  python3 -m trainprof.cli analyze examples/$name.fixed.py --run-dir /tmp/samples/$name.fixed -q -- $STEPS || echo "FAILED analyze $name.fixed"
done
for r in $(seq 1 ${ROUNDS:-3}); do
  for ex in examples/*.py; do
    STEPTIME_SKIP=10 STEPTIME_STEPS=20 timeout 300 python3 bench/steptime.py $ex --steps 200 2>/dev/null | tail -1 >> $OUT/steptimes.jsonl
  done
done
for d in /tmp/samples/*; do cp examples/$(basename $d).py $d/ 2>/dev/null; rm -f $d/output.log; done
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
cat $OUT/steptimes.jsonl
