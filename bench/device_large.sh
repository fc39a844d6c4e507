#!/bin/bash
# Device-machine driver for bench/large_traces.py (carry .whl): builds the 1 GB trace there and
# measures trainprof against the bare decodes on that machine's cores. HTA is not installed there
# (no network); its row comes from the CPU host's run.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
export PYTHONPATH=/tmp/site
SIZES=${SIZES:-1000}
ONLY=${ONLY:-read,msgspec_struct,msgspec_tp,tp_load,tp_report,tp_report_serial,tp_stages}
python3 bench/large_traces.py build --sizes "$SIZES" --out /tmp/tl || exit 1
python3 bench/large_traces.py measure --sizes "$SIZES" --out /tmp/tl --only "$ONLY" || exit 1
python3 bench/large_traces.py report --out /tmp/tl --md "$OUT/LARGE_TRACES.device.md"
cp /tmp/tl/results.jsonl "$OUT/results.device.jsonl"
nproc; lscpu | grep -E "Model name|^CPU\(s\)|Thread"
