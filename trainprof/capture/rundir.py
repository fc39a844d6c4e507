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
import math
import os
import time
from typing import Annotated

import msgspec

from ..errors import TraceError
from ..files import read_regular

RUN_JSON = "run.json"
LINES_JSON = "lines.json"
ANALYSIS_JSON = "analysis.json"
TRIALS_JSON = "trials.json"  # the top fixes, run and measured (fix/trials.py)
LOADER_LINES_JSON = "loader_lines.json"  # the Dataset's lines making a few batches (capture/loader_lines.py)
PRECISION_JSON = "precision.json"  # bf16/TF32 timed on the run's device, its own shapes (capture/precision.py)
REPORT_HTML = "report.html"
OUTPUT_LOG = "output.log"
# A run directory's JSON files, at most (a lines.json of a long run is a few MB): a larger one
# is refused before it is read, so a planted one cannot exhaust memory.
JSON_MAX = 256 << 20


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


def read_json(path: str, schema: type | None = None) -> dict | None:
    """A JSON file of the run directory (None if absent). Given a schema, a file of the
    wrong shape (damaged, hand-edited, another tool's) is a clear error here, not a
    TypeError deep in an analysis; the document itself is returned as it was."""
    try:
        doc = json.loads(read_regular(path, JSON_MAX))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise TraceError(f"{path}: unreadable ({e.strerror or e})") from None
    except (ValueError, RecursionError) as e:  # RecursionError: nested too deeply for the parser
        raise TraceError(f"{path}: unreadable ({'nested too deeply' if isinstance(e, RecursionError) else e})") from None
    if schema is not None:
        try:
            msgspec.convert(doc, schema, strict=False)
        except msgspec.ValidationError as e:
            raise TraceError(f"{path}: not a trainprof {os.path.basename(path)} ({e})") from None
    return doc


# The shapes of run.json and lines.json: the fields trainprof reads, with their types
# (others are ignored). Written by capture/child.py and runner.py.
class _Schedule(msgspec.Struct):
    wait: int = 0
    warmup: int = 0
    active: int = 0


class _Loader(msgspec.Struct):
    num_workers: int | None = None
    prefetch_factor: int | None = None
    batch_size: int | None = None
    pin_memory: bool | None = None
    persistent_workers: bool | None = None
    first_step: int | None = None
    last_iter: int | None = None


class _Fetch(msgspec.Struct):
    batches: int = 0
    wall_ms: float = 0.0
    cpu_ms: float = 0.0
    processes: int = 0


class _Fetches(msgspec.Struct):
    main: _Fetch | None = None
    workers: _Fetch | None = None


class _Steady(msgspec.Struct):
    reached: bool | None = None
    searched: bool | None = None
    step_ms: float | None = None
    steps: int | None = None
    seconds: float | None = None
    windows_ms: list[float] = []
    window_steps: list[int] = []
    p10_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    outliers: list[int] = []
    cpu_ms: float | None = None
    loader_wait_ms: float | None = None
    period: int | None = None
    spike_ms: float | None = None
    spike_steps: list[int] = []
    spike_source: str | None = None  # "watch": seen after the trace, not in the search
    watched_s: float | None = None
    watched_steps: int | None = None


class _Memory(msgspec.Struct):
    peak_allocated: int = 0
    peak_reserved: int = 0
    reserved: int = 0
    free: int = 0
    total: int = 0
    alloc_retries: int = 0


class _Parallel(msgspec.Struct):
    procs: int
    speedup: Annotated[float, msgspec.Meta(ge=0, le=4096)]
    one_ms: float | None = None
    mean_ms: float | None = None


class _Rank(msgspec.Struct):
    rank: int
    trace: str
    lines: str | None = None
    host: str | None = None
    unprofiled_ms: float | None = None
    profiled_step_ms: list[float] | None = None


class RunSchema(msgspec.Struct):
    script: str | None = None
    script_sha256: str | None = None
    argv: list[str] = []
    cwd: str | None = None
    schedule: _Schedule | None = None
    trace: str | None = None
    active_steps: list[int] | None = None
    unprofiled_pre_ms: float | None = None
    unprofiled_post_ms: float | None = None
    unprofiled_ms: float | None = None
    unprofiled_step_ms: list[float] = []
    profiled_step_ms: list[float] = []
    step_marker: str | None = None
    cuda: bool | None = None
    device: str | None = None
    torch: str | None = None
    cuda_version: str | None = None
    python: str | None = None
    cpu_count: int | None = None
    loaders: list[_Loader] | None = None
    steady: _Steady | None = None
    fetches: _Fetches | None = None
    cores: int | None = None
    parallel: _Parallel | None = None
    profiled_from: int | None = None
    memory: _Memory | None = None
    notes: list[str] | None = None
    world_size: int | None = None
    ranks: list[_Rank] | None = None


_Event = tuple[int, int, int, int, int]  # (ns, kind, code id, file index, line)
_Frame = tuple[int, int, int]  # (code id, file index, line)


class _Covered(msgspec.Struct):
    whole: bool  # the whole run to the trace (Python 3.12+), or its setup only
    lines: list[tuple[int, int]] = []  # (file index, line) that ran
    partial: list[tuple[int, int, int]] = []  # (file index, first, last line): code left untraced


class _Unprofiled(msgspec.Struct):
    steps: int
    initial_stack: list[_Frame]
    events: list[_Event]
    start: float
    end: float


class LinesSchema(msgspec.Struct):
    files: list[str]
    initial_stack: list[_Frame] = []
    events: list[_Event] = []
    anchors: list[tuple[int, float, float]] = []
    tight_anchors: list[tuple[float, float]] = []
    unprofiled: _Unprofiled | None = None
    covered: _Covered | None = None


# analysis.json as apply, trials and verify read it (written by report/jsonout.py): a
# hand-edited or damaged one is an input error naming the field, not a crash deep in apply.
class _Params(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Every parameter a codemod reads (Site.param), with the values it can take: a rule
    that gives its fix a new parameter declares it here, or apply refuses the analysis."""

    every: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None  # a `step % every` guard
    workers: Annotated[int, msgspec.Meta(ge=0, le=1024)] | None = None  # DataLoader num_workers
    was: Annotated[int, msgspec.Meta(ge=0, le=1024)] | None = None
    pin: bool | None = None  # pin the DataLoader's memory (the batches go to a GPU)


class _Fix(msgspec.Struct):
    id: str | None = None
    params: _Params | None = None


class _Finding(msgspec.Struct):
    rule: str
    path: str
    line: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)]
    fix: _Fix | None = None
    saving_ms: float | None = None


class AnalysisSchema(msgspec.Struct):
    schema: int | None = None
    root: str | None = None
    script: str | None = None
    script_sha256: str | None = None
    argv: list[str] = []
    files: dict[str, str] = {}
    findings: list[_Finding] = []


def read_analysis(run_dir: str) -> dict | None:
    """The fields of analysis.json that apply, trials and verify read, checked and normalized
    (a line of "3" is 3): a value no codemod could use (an `every` of 0, NaN or -1) is refused here."""
    path = os.path.join(run_dir, ANALYSIS_JSON)
    doc = read_json(path)
    if doc is None:
        return None
    try:
        return msgspec.to_builtins(msgspec.convert(doc, AnalysisSchema, strict=False))
    except msgspec.ValidationError as e:
        raise TraceError(f"{path}: not a trainprof {ANALYSIS_JSON} ({e})") from None


def read_run(run_dir: str) -> dict | None:
    return read_json(os.path.join(run_dir, RUN_JSON), RunSchema)


def read_lines(run_dir: str, name: str = LINES_JSON) -> dict | None:
    """The line recorder's log: lines.json, or a rank's (run.json's ranks[k]["lines"])."""
    path = os.path.join(run_dir, os.path.basename(name))
    doc = read_json(path, LinesSchema)
    if doc is not None:
        n = len(doc["files"])
        parts = [doc] + ([doc["unprofiled"]] if doc.get("unprofiled") else [])
        cov = doc.get("covered") or {}
        if any(not 0 <= fr[1] < n for p in parts for fr in p.get("initial_stack", []) + [e[2:] for e in p.get("events", [])]) \
                or any(not 0 <= x[0] < n for x in cov.get("lines", []) + cov.get("partial", [])):
            raise TraceError(f"{path}: not a trainprof lines.json (a file index out of range)")
    return doc


def resolve(target: str) -> tuple[str | None, str]:
    """RUN_DIR or a bare trace file -> (run_dir or None, trace path)."""
    if os.path.isdir(target):
        traces = find_traces(target)
        if not traces:
            raise TraceError(f"{target}: no *.pt.trace.json[.gz] in this directory")
        run = read_run(target) or {}
        named = run.get("trace")
        if named and os.path.join(target, named) in traces:
            return target, os.path.join(target, named)
        return target, traces[0]
    if os.path.isfile(target):
        return None, target
    raise TraceError(f"no such run directory or trace file: {target}")


class Precision(msgspec.Struct):
    """precision.json (capture/precision.py): bf16/TF32 over fp32, timed on the run's device."""

    device: str | None = None
    torch: str | None = None
    ratios: dict[str, float] = {}
    shapes: list[dict] = []
    cached: int = 0
    error: str | None = None


RATIO_CLASSES = ("gemm", "conv", "tf32")


def read_precision(run_dir: str) -> tuple[dict | None, str | None]:
    """(the device's measured ratios, a note) from run_dir's precision.json: (None, None) where
    there is none; ratios clamped to what a kernel can do (a hand-edited file cannot claim more)."""
    path = os.path.join(run_dir, PRECISION_JSON)
    try:
        doc = read_json(path, Precision)
    except TraceError as e:
        return None, f"{e}: bf16/TF32 ratios from the rule's table instead"
    if doc is None:
        return None, None
    if doc.get("error"):
        return None, f"bf16/TF32 not timed on this device ({str(doc['error'])[:120]}): the rule's table is used"
    ratios = {k: min(1.5, max(0.01, float(v))) for k, v in (doc.get("ratios") or {}).items()
              if k in RATIO_CLASSES and isinstance(v, (int, float)) and math.isfinite(v)}
    if not ratios:
        return None, None
    return {"device": str(doc.get("device") or "this device")[:80], "torch": str(doc.get("torch") or "")[:40],
            "ratios": ratios, "shapes": len(doc.get("shapes") or []), "cached": doc.get("cached") or 0}, None


def issue_ms(run: dict) -> float | None:
    """The first step of each of the steady windows (each starts just after a device sync): on a
    GPU-bound run, the CPU's unprofiled time to issue a step, waits included (a sync inside it, a
    batch's wait), as the GPU queue was empty. None where the windows are not known."""
    steps = run.get("unprofiled_step_ms") or []
    sizes = ((run.get("steady") or {}).get("window_steps") or [])[-2:]
    if not steps or not sizes or sum(sizes) != len(steps):
        return None
    firsts = [steps[0]] + ([steps[sizes[0]]] if len(sizes) > 1 else [])
    return sum(firsts) / len(firsts) if all(isinstance(v, (int, float)) and v > 0 for v in firsts) else None


def steady_unprofiled(run: dict) -> float | None:
    """The unprofiled step time: the steady state the capture searched for, where it did; else
    the faster of the steps timed before the trace and those after it. The first carry warm-up
    (allocator growth, autotuning, a GPU queue filling); the second can carry the profiler's
    aftermath (seen: 36 ms before, 62 ms after, 42 ms in a separate unprofiled run). In a
    distributed run, the least over the ranks: they run in lockstep, so each timed the same
    steps, and the least is the one least held up by a peer's start-up or trace writing."""
    ranks = [steady_unprofiled(r) for r in run.get("ranks") or []]
    if any(ranks):
        return min(v for v in ranks if v)
    if (run.get("steady") or {}).get("searched") and run.get("unprofiled_pre_ms"):
        # Found, not assumed: the steps after the trace follow seconds of trace writing during
        # which a DataLoader's workers refill its queue -- they would look faster than the run.
        return run["unprofiled_pre_ms"]
    vals = [v for v in (run.get("unprofiled_pre_ms"), run.get("unprofiled_post_ms")) if v]
    return min(vals) if vals else run.get("unprofiled_ms")
