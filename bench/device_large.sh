#!/bin/bash
# Device-machine driver for bench/large_traces/ (carry .whl; runs from the repository root): builds
# the 1 GB trace there and measures trainprof against the bare decodes on that machine's cores. HTA
# runs there only from wheels carried in .htawhl/ (pip download --only-binary=:all: --python-version
# 3.12 of HolisticTraceAnalysis==0.5.0, pandas, python_dateutil, six, tzdata, plotly, narwhals,
# packaging, pydot, pyparsing, networkx, psutil, typing_extensions, numpy; ~40 MB): add ,hta to ONLY
# and HTA_TIMEOUT under the call's limit, e.g. ONLY=read,msgspec_struct,tp_report,hta FORMATS=gz.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade --target /tmp/site .whl/*.whl . || exit 1
export PYTHONPATH=/tmp/site
SIZES=${SIZES:-1000}
ONLY=${ONLY:-read,msgspec_struct,msgspec_tp,tp_load,tp_report,tp_report_serial,tp_stages}
python3 -m bench.large_traces build --sizes "$SIZES" --out /tmp/tl || exit 1
HTA=()
if [ -d .htawhl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/hta .htawhl/*.whl || exit 1
  printf '#!/bin/sh\nPYTHONPATH=/tmp/hta exec python3 "$@"\n' > /tmp/hta-py && chmod +x /tmp/hta-py
  HTA=(--hta-python /tmp/hta-py --hta-timeout "${HTA_TIMEOUT:-470}")
fi
python3 -m bench.large_traces measure --sizes "$SIZES" --out /tmp/tl --only "$ONLY" ${FORMATS:+--formats "$FORMATS"} "${HTA[@]}" || exit 1
python3 -m bench.large_traces report --out /tmp/tl --md "$OUT/LARGE_TRACES.device.md" "${HTA[@]}"
cp /tmp/tl/results.jsonl "$OUT/results.device.jsonl"
nproc; lscpu | grep -E "Model name|^CPU\(s\)|Thread"
