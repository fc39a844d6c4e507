#!/usr/bin/env bash
# Device-machine driver for bench/estimates.py (carry .whl). PHASES: tests analyze time fixed rules apply probe.
# Everything lands in $OUT: pytest.log, runs.tar.gz (analyze), steptimes.jsonl (time), fixed.tar.gz,
# probe.json (probe), rules.tar.gz (rules), apply.log (apply). One time round of all 26 scripts takes ~400 s on the H100: ROUNDS=1 per call.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
t=$(date +%s); lap() { echo "== $1 took $(( $(date +%s) - t )) s"; t=$(date +%s); }
for phase in ${PHASES:-tests analyze}; do case $phase in
tests) (cd /tmp && timeout 300 python3 -m pytest -q -p no:cacheprovider "$OLDPWD/tests" > $OUT/pytest.log 2>&1); tail -3 $OUT/pytest.log; lap tests ;;
analyze) python3 bench/estimates.py analyze /tmp/est; tar -C /tmp/est -czf $OUT/runs.tar.gz runs; lap analyze ;;
time) python3 bench/estimates.py time $OUT; lap time ;;  # appends to $OUT/steptimes.jsonl as it goes: a timeout keeps what ran
fixed)
  for ex in ${FIXED:-}; do
    timeout 120 python3 -m trainprof.cli analyze --run-dir /tmp/fixed/$ex.fixed -q examples/$ex.fixed.py --steps 200 || echo "FAILED $ex.fixed"
    rm -f /tmp/fixed/$ex.fixed/output.log /tmp/fixed/$ex.fixed/report.html
  done
  tar -C /tmp -czf $OUT/fixed.tar.gz fixed; lap fixed ;;
rules)  # runs for the rules' GPU tests (sample_traces/): RULE_RUNS example names
  for ex in ${RULE_RUNS:-tuned mask_loss mask_loss.fixed}; do
    timeout 180 python3 -m trainprof.cli analyze --run-dir /tmp/rules/$ex -q examples/$ex.py --steps 200 > /dev/null || echo "FAILED $ex"
    rm -f /tmp/rules/$ex/output.log /tmp/rules/$ex/report.html
  done
  tar -C /tmp -czf $OUT/rules.tar.gz rules; lap rules ;;
apply)  # `apply --all-safe --verify` on copies of the APPLY examples -> apply.log
  mkdir -p /tmp/apply
  for ex in ${APPLY:-item_sync host_alloc small_host_tensors lstm_item pin_memory_workers}; do
    cp examples/$ex.py /tmp/apply/
    timeout 120 python3 -m trainprof.cli analyze --run-dir /tmp/apply/$ex -q /tmp/apply/$ex.py --steps 200 > /dev/null || echo "FAILED analyze $ex"
    echo "== $ex" >> $OUT/apply.log
    timeout 300 python3 -m trainprof.cli apply /tmp/apply/$ex --all-safe --verify >> $OUT/apply.log 2>&1 || echo "FAILED apply $ex"
  done; lap apply ;;
probe) timeout 200 python3 bench/probe_overhead.py > $OUT/probe.json 2>/dev/null; lap probe ;;
esac; done
