#!/usr/bin/env bash
# Device-machine driver for the distributed example (2 GPUs; carry .whl): captures
# examples/ddp_accum.py as it is, with its straggler removed (--straggle-ms 0), and its
# fixed version (no straggler, no_sync()), each with trainprof analyze on 2 ranks, REPEAT
# times (default 1); prints each run's unprofiled step per rank (before and after the trace),
# writes the first round's reports to $OUT/<run>.txt and its runs (without output.log) to
# $OUT/ddp.tar.gz; then runs the TESTS given (pytest paths) on this machine.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
# NVLink multicast stays off (the device machine's rule): also for the ranks torchrun starts
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
pkill -9 -f capture.child; pkill -9 -f torch.distributed.run  # what an earlier call left on a warm machine
tp() { timeout 240 python3 -m trainprof.cli "$@"; }
t=$(date +%s)
for k in $(seq ${REPEAT:-1}); do
  R=/tmp/ddp$k
  tp analyze -q --timeout 180 --wait ${WAIT:-8} --nproc-per-node 2 --run-dir $R/ddp_accum examples/ddp_accum.py -- --steps 200 || echo "FAILED ddp_accum"
  tp analyze -q --timeout 180 --wait ${WAIT:-8} --nproc-per-node 2 --run-dir $R/ddp_accum.nostraggler examples/ddp_accum.py -- --steps 200 --straggle-ms 0 || echo "FAILED nostraggler"
  tp analyze -q --timeout 180 --wait ${WAIT:-8} --run-dir $R/ddp_accum.fixed -- torchrun --standalone --nproc-per-node 2 examples/ddp_accum.fixed.py --steps 200 || echo "FAILED fixed"
  for d in $R/*; do
    python3 -c "import json,sys; r=json.load(open('$d/run.json')); print('round $k', '$(basename $d)', r['device'], [(x['rank'], round(x['unprofiled_pre_ms'],2), round(x['unprofiled_post_ms'] or 0,2)) for x in r['ranks']])"
    [ -f $d/run.json ] || cp $d/output.log $OUT/$(basename $d).output.log
  done
done
echo "== captures took $(( $(date +%s) - t )) s"
for d in /tmp/ddp1/*; do tp report $d > $OUT/$(basename $d).txt 2>&1; rm -f $d/output.log; done
tar -C /tmp -czf $OUT/ddp.tar.gz ddp1
for f in ${TESTS:-}; do (cd /tmp && timeout 300 python3 -m pytest -q -p no:cacheprovider $OLDPWD/$f > $OUT/$(basename $f .py).log 2>&1; tail -3 $OUT/$(basename $f .py).log); done
