#!/usr/bin/env bash
# Device-machine driver for bench/corpus.py (carry .whl: the cp312 wheels trainprof needs that the
# image lacks; for corpus/lightning_gan also lightning, pytorch-lightning, lightning-utilities, torchmetrics,
# fsspec and tqdm: `pip download --no-deps -d .whl ...`). NAMES: corpus scripts (default all); EXAMPLES: examples too; TESTS=1 runs the GPU-relevant
# tests first. Everything lands in $OUT: pytest.log, corpus.jsonl, runs.tar.gz (each run's JSON files and small traces).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
python3 -c "
import importlib.util as u
print({m: u.find_spec(m) is not None for m in ('lightning', 'transformers', 'accelerate', 'datasets', 'jsonargparse')})"
if [ "${TESTS:-0}" = 1 ]; then
  (cd /tmp && timeout 240 python3 -m pytest -q -p no:cacheprovider "$OLDPWD/tests/test_precision.py" "$OLDPWD/tests/test_steady.py" \
     "$OLDPWD/tests/test_rules_gpu_samples.py" "$OLDPWD/tests/test_periodic_work.py" "$OLDPWD/tests/test_trial_knobs.py" > $OUT/pytest.log 2>&1); tail -3 $OUT/pytest.log
fi
timeout ${LIMIT:-480} python3 bench/corpus.py run /tmp/corpus ${NAMES:-}
cp /tmp/corpus/corpus.jsonl $OUT/ 2>/dev/null
# each run's JSON files, and its traces where small enough to come back (re-analysed offline by `corpus.py report`)
(cd /tmp/corpus && find runs \( -name '*.json' -o \( -name '*.pt.trace.json.gz' -size -3M \) \) | tar -czf $OUT/runs.tar.gz -T -) 2>/dev/null
ls ~/.cache/trainprof/ 2>/dev/null
