"""The run directory: TensorBoard plugin layout plus trainprof's own files.

    <logdir>/<script>-<timestamp>/
        <host>_<pid>.pt.trace.json.gz   the Kineto trace (what TensorBoard reads)
        run.json                        how the run was made, unprofiled step times
        lines.json                      the line recorder's log (source attribution)
        output.log                      the script's stdout and stderr
        analysis.json                   written by analyze / report
        report.html                     likewise: the self-contained HTML report
"""

from __future__ import annotations

import glob
import json
import os
import time

from ..errors import TraceError

RUN_JSON = "run.json"
LINES_JSON = "lines.json"
ANALYSIS_JSON = "analysis.json"
REPORT_HTML = "report.html"
OUTPUT_LOG = "output.log"


def new_run_dir(script: str, logdir: str = "trainprof_runs") -> str:
    stem = os.path.splitext(os.path.basename(script))[0]
    base = os.path.join(logdir, f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    os.makedirs(path)
    return path


def find_traces(run_dir: str) -> list[str]:
    return sorted(
        glob.glob(os.path.join(run_dir, "*.pt.trace.json.gz")) + glob.glob(os.path.join(run_dir, "*.pt.trace.json"))
    )


def read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise TraceError(f"{path}: unreadable ({e})") from None


def resolve(target: str) -> tuple[str | None, str]:
    """RUN_DIR or a bare trace file -> (run_dir or None, trace path)."""
    if os.path.isdir(target):
        traces = find_traces(target)
        if not traces:
            raise TraceError(f"{target}: no *.pt.trace.json[.gz] in this directory")
        run = read_json(os.path.join(target, RUN_JSON)) or {}
        named = run.get("trace")
        if named and os.path.join(target, named) in traces:
            return target, os.path.join(target, named)
        return target, traces[0]
    if os.path.isfile(target):
        return None, target
    raise TraceError(f"no such run directory or trace file: {target}")


def steady_unprofiled(run: dict) -> float | None:
    """The unprofiled step time: the faster of the steps timed before the trace and those
    after it. The first carry warm-up (allocator growth, autotuning, a GPU queue filling);
    the second can carry the profiler's aftermath (seen: 36 ms before, 62 ms after, 42 ms
    in a separate unprofiled run of the same script)."""
    vals = [v for v in (run.get("unprofiled_pre_ms"), run.get("unprofiled_post_ms")) if v]
    return min(vals) if vals else run.get("unprofiled_ms")
