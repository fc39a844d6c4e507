#!/usr/bin/env bash
# The open measurements of Issues 19 and 23 in priority order, as many as fit one device call
# (carry .whl and corpus; `python corpus/get.py --clean` first). Each part runs only if
# the call has the time it needs left (BUDGET seconds in all, default 560); results under
# $OUT/<part>/ (corpus.jsonl, runs.tar.gz) and $OUT/cores.txt. FROM=N starts at part N, to go on
# in a later call where an earlier one stopped; TO=M stops after part M.
#   1 cores: what 15 processes get done side by side, and the loader examples' estimates against their fixes
#   2 trials: lightning_gan and imagenet with trials (Issue 23: a measured fix >= 1.15x named first or second)
#   3 throttle: excessive_logging's trial of its logging throttle against the same variant timed apart
#   4 corpus: the rest of the corpus with trials
#   5 examples: the examples not re-timed with the windows in seconds
set -u
BUDGET=${BUDGET:-560}
FROM=${FROM:-1}
TO=${TO:-99}
export TESTS=0 ROUNDS=${ROUNDS:-2} SKIP=30 TIMED=30 SETTLE=15 MIN_S=2 SKIP_S=1 TRIAL_BUDGET=${TRIAL_BUDGET:-25}
root=$OUT
left() { echo $((BUDGET - SECONDS)); }

part() {  # part N NEEDS_S NAME ENV...: run bench/device_corpus.sh with ENV where NEEDS_S seconds are left
  local n=$1 need=$2 name=$3
  shift 3
  [ "$n" -ge "$FROM" ] && [ "$n" -le "$TO" ] || return 0
  if [ "$(left)" -lt "$need" ]; then
    echo "part $n ($name): skipped, $(left) s left (needs $need): FROM=$n next time"
    return 0
  fi
  mkdir -p "$root/$name"
  env OUT="$root/$name" LIMIT=$(( $(left) - 15 )) "$@" bash bench/device_corpus.sh 2>&1 | grep -v "^{" | tail -4
  echo "part $n ($name) done at ${SECONDS}s"
}

part 1 120 cores TRIALS=0 EXAMPLES=dataloader_stall,pin_memory_workers NAMES="dataloader_stall pin_memory_workers"
if [ "$FROM" -le 1 ] && [ -d /tmp/site/trainprof ]; then  # trainprof as part 1's device_corpus.sh installed it
  PYTHONPATH=/tmp/site python3 -c "
from trainprof.capture import cores
print('available', cores.available(), 'quota', cores._cgroup_quota())
for n in (4, 8, 15):
    print(n, cores.parallel(n))" > "$root/cores.txt" 2>&1
  lscpu | grep -i "model name\|thread(s) per core\|core(s) per socket\|socket(s)" >> "$root/cores.txt"
  cat "$root/cores.txt"
fi
part 2 200 trials TRIALS=1 NAMES="lightning_gan imagenet"
part 3 150 throttle TRIALS=1 EXAMPLES=excessive_logging NAMES=excessive_logging
part 4 150 corpus TRIALS=1 NAMES="mnist dcgan vae nanogpt super_resolution word_language_model makemore mingpt_chargpt siamese_network"
part 5 120 examples TRIALS=0 EXAMPLES=small_host_tensors,conv_fp32,host_alloc,item_sync,lstm_item,fp32_transformer,histogram_logging NAMES="small_host_tensors conv_fp32 host_alloc item_sync lstm_item fp32_transformer histogram_logging"
exit 0
