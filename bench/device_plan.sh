#!/usr/bin/env bash
# The open measurements of Issues 19 and 23 in priority order, as many as fit one device call
# (carry .whl and corpus; `python corpus/get.py --clean` first). Each part runs only if
# the call has the time it needs left (BUDGET seconds in all, default 560); results under
# $OUT/<part>/ (corpus.jsonl, runs.tar.gz). FROM=N starts at part N, to go on in a later call where
# an earlier one stopped; TO=M stops after part M. Scripts run in the order named; a part stopped by
# its time limit keeps what ran (bench/corpus.py writes the script under way as far as it got).
#   1 trials: lightning_gan and imagenet with trials (Issue 23: a measured fix >= 1.15x named first or second)
#   2 throttle: excessive_logging's trial of its logging throttle against the same variant timed apart
#   3 loader: the loader examples' estimates against trainprof's own fix (its worker count) and the .fixed.py
#   4 corpus: the rest of the corpus with trials
#   5 examples: the examples not re-timed with the windows in seconds
# (2026-12-08: part 1 of the plan before took 187 s for two examples; imagenet alone, analysed
# with trials, did not finish in 350 s: a call of ~550 s holds two or three scripts with trials.)
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
  env OUT="$root/$name" LIMIT=$(( $(left) - 15 )) "$@" bash bench/device_corpus.sh 2>&1 | grep -v "^{" | tail -8
  echo "part $n ($name) done at ${SECONDS}s"
}

part 1 300 trials TRIALS=1 NAMES="lightning_gan imagenet"
part 2 150 throttle TRIALS=1 EXAMPLES=excessive_logging NAMES=excessive_logging
part 3 150 loader TRIALS=0 EXAMPLES=dataloader_stall,pin_memory_workers NAMES="dataloader_stall pin_memory_workers"
part 4 150 corpus TRIALS=1 NAMES="mnist dcgan vae nanogpt super_resolution word_language_model makemore mingpt_chargpt siamese_network"
part 5 120 examples TRIALS=0 EXAMPLES=small_host_tensors,conv_fp32,host_alloc,item_sync,lstm_item,fp32_transformer,histogram_logging NAMES="small_host_tensors conv_fp32 host_alloc item_sync lstm_item fp32_transformer histogram_logging"
exit 0
