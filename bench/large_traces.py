"""Large traces: how fast, and in how much memory, trainprof reads and analyzes them.

Run by hand (not by the test suite), on any machine; no GPU needed.

    python bench/large_traces.py build   [--out DIR] [--source RUN] [--sizes 100,500,1000]
    python bench/large_traces.py check   [--out DIR] --sizes 30   # consistency of a (small) build
    python bench/large_traces.py measure [--out DIR] [--sizes ...] [--hta-python PY] [--only KIND,...]
    python bench/large_traces.py report  [--out DIR] [--md PATH]  # -> bench/LARGE_TRACES.md
    python bench/large_traces.py all     [...]            # build, measure, report

DIR defaults to /tmp/trainprof-large (keep it out of the repository: the traces are ~1.7 GB).
HTA runs in its own venv: `python -m venv /tmp/hta-venv && /tmp/hta-venv/bin/pip install
HolisticTraceAnalysis==0.5.0` (--hta-python, default /tmp/hta-venv/bin/python); ijson must be
importable by this Python. The three sizes take ~30 s to build and ~25 minutes to measure on a
2-core VM (HTA alone ~9 of them). `report` rewrites the whole file from DIR/results.jsonl (the latest
line of each measure wins) except the block between `<!-- notes:begin -->` and `<!-- notes:end -->`,
where the findings written by hand live.

build: a synthetic long trace is made from a real GPU run (default sample_traces/item_sync) by
repeating its recorded ProfilerStep window N times. The window is [start of the first recorded
ProfilerStep, end of the last); the events it holds, plus those linked to them (the kernels,
copies and memsets their runtime calls launched -- by correlation --, the GPU-side step
annotations -- by External id --, and both ends of every flow one end of which is in the window)
are copied N times, each copy shifted by the period P (the window's length plus the run's mean gap
between steps, more where a GPU stream's work in one copy would otherwise run into the next's).
Each copy renumbers ProfilerStep#N (by the number of recorded steps), and offsets correlation ids,
ac2g/fwdbwd flow ids, External ids, Python ids (and parent ids pointing at copied frames), Ev Idx and
Sequence number by (max id + 1) per copy, so a copy links only to itself. Events before the window
(the profiler's start) stay once, as they were; frames enclosing the whole window (the script's
<module>, runpy, the profiler span) are stretched over all copies; events after it (the profiler's
stop) move after the last copy. Events are written in Kineto's layout (one key group a line,
ts with 3 decimals), streaming, copy by copy, to a .json and a .json.gz (gzip level 6) at once.
A "distributedInfo": {"rank": 0} is added to the header: HolisticTraceAnalysis reads a trace's
rank from it, and without it scans the whole file, line by line, looking for one.

Each size gets two run directories (OUT/<source>-<size>mb-json/, -gz/), each holding its trace,
the script copy, a run.json (active_steps covering every copied step; "trace" naming the file;
"synthetic" saying how it was built; profiled_step_ms repeated) and a lines.json REBUILT the same
way: the line log's events inside the window (recorder clock, placed through the tight anchors)
are repeated with the same shift, the anchors and tight anchors renumbered and shifted, events
after the window moved after the last copy; the unprofiled part is kept as it was. So `trainprof
report` does the line attribution on the long trace too, as on a real run.

measure: each measure runs in a fresh subprocess; wall time is taken around the operation inside
the child (op s: after the imports) and around the whole process (process s); peak RSS is the
child's own ru_maxrss (os.wait4). Results go to OUT/results.jsonl (one line per run; a re-run of
a measure replaces its line in the report). Kinds:

  read           read the bytes (gunzip included for .gz): the floor under every decoder
  orjson         orjson.loads(bytes)
  orjson_nogc    the same with the garbage collector disabled (most of orjson's and json's time on a
                 large trace is the GC walking millions of new dicts)
  json           json.loads(bytes)
  msgspec_dict   msgspec.json.decode(bytes) into dicts and lists
  msgspec_struct msgspec into a minimal typed Struct (gc=False) with the fields trainprof reads;
                 the baseline of every ratio: best of 3 runs
  msgspec_tp     msgspec into trainprof's own structs (trainprof.trace.decode.whole_decoder): decode only
  ijson          ijson.items(f, "traceEvents.item") streamed (yajl2_c), counting events
  tp_load        trainprof.trace.load.load_trace(path)
  tp_report      trainprof report RUN_DIR -q (load + full analysis + analysis.json + report.html)
  tp_stages      the same, stage by stage: time, RSS and peak RSS after each stage
  tp_profile     cProfile of tp_report, top 25 by cumulative and 15 by own time (--profile-sizes;
                 default the smallest size)
  hta            HolisticTraceAnalysis: TraceAnalysis(trace_dir) + get_temporal_breakdown()
                 + get_idle_time_breakdown(), run by --hta-python (a venv with
                 `pip install HolisticTraceAnalysis==0.5.0`), killed after --hta-timeout seconds

Kinds whose time grows past their budget (ijson: --ijson-max-s, hta: --hta-timeout) are skipped at
larger sizes when the smaller size's rate says they would exceed it; the skip is recorded.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = "/tmp/trainprof-large"
DEFAULT_SOURCE = os.path.join(ROOT, "sample_traces", "item_sync")
MD = os.path.join(ROOT, "bench", "LARGE_TRACES.md")
MB = 1_000_000

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation"}
_STEP = re.compile(r"ProfilerStep#(\d+)$")

# ---------------------------------------------------------------------------------------------
# build
# ---------------------------------------------------------------------------------------------

# slot kinds of an event template
TS, STEP, CORR, EXT, PYID, EVIDX, SEQ, FWD = range(8)
ID_KINDS = (CORR, EXT, PYID, EVIDX, SEQ, FWD)
ARG_KIND = {"correlation": CORR, "External id": EXT, "Python id": PYID, "Python parent id": PYID,
            "Ev Idx": EVIDX, "Sequence number": SEQ}


def _slurp(path: str, mode: str = "r"):
    with open(path, mode) as f:
        return f.read()


def _load(path: str):
    return json.loads(_slurp(path))


def _find_trace(run_dir: str) -> str:
    run = _load(os.path.join(run_dir, "run.json"))
    path = os.path.join(run_dir, run["trace"])
    if not os.path.isfile(path):
        path = next(os.path.join(run_dir, f) for f in sorted(os.listdir(run_dir)) if ".pt.trace.json" in f)
    return path


def _read_json(path: str):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)


def _end(e) -> float:
    return e["ts"] + (e.get("dur") or 0.0)


def _dumps(v) -> str:
    return json.dumps(v, ensure_ascii=False)


class Plan:
    """What a source trace's events become in a trace of N copies of its step window."""

    def __init__(self, source_run: str):
        self.source_run = source_run
        self.trace_path = _find_trace(source_run)
        doc = _read_json(self.trace_path)
        self.doc = doc
        ev = doc["traceEvents"]
        steps = [e for e in ev if e.get("ph") == "X" and e.get("cat") == "user_annotation"
                 and _STEP.match(e.get("name", ""))]
        if not steps:
            raise SystemExit(f"{self.trace_path}: no ProfilerStep spans")
        steps.sort(key=lambda e: e["ts"])
        nums = [int(_STEP.match(s["name"]).group(1)) for s in steps]
        self.first_step, self.n_steps = min(nums), max(nums) - min(nums) + 1
        w0, w1 = steps[0]["ts"], max(_end(s) for s in steps)
        gaps = [b["ts"] - _end(a) for a, b in itertools.pairwise(steps)]
        gap = max(statistics.mean(gaps), 0.0) if gaps else 0.0
        self.w0, self.w1 = w0, w1

        # 1. the copied set: in the window, or linked to it
        timed = [e for e in ev if e.get("ph") != "M" and "ts" in e]
        # In the window: the CPU-side events that start there -- less the frames that run on well past
        # its end (the last prof.step(), which stops the profiler: the run's end, not a step's). GPU work
        # is copied with its launch, not by time: kernels in the window with no launch in it are the
        # tail of the warm-up steps (launched before the profiler recorded the CPU side), kept once.
        is_gpu = lambda e: e.get("cat") in GPU_CATS
        is_flow = lambda e: e.get("ph") in ("s", "f", "t")
        inwin = {id(e) for e in timed if w0 <= e["ts"] < w1 and not is_gpu(e) and not is_flow(e)
                 and _end(e) <= w1 + 1000.0}
        corr_in = {e["args"]["correlation"] for e in timed if id(e) in inwin and "correlation" in (e.get("args") or {})}
        ext_in = {e["args"]["External id"] for e in timed if id(e) in inwin and "External id" in (e.get("args") or {})}
        copied = set(inwin)
        for e in timed:
            a = e.get("args") or {}
            if is_gpu(e) and (a.get("correlation") in corr_in or
                              (e.get("cat") == "gpu_user_annotation" and a.get("External id") in ext_in)):
                copied.add(id(e))
        flows: dict = {}
        for e in timed:
            if is_flow(e):
                flows.setdefault((e.get("cat"), e.get("id")), []).append(e)
        for (cat, fid), members in flows.items():
            if (fid in corr_in) if cat == "ac2g" else any(w0 <= m["ts"] < w1 for m in members):
                copied.update(id(m) for m in members)
        self.copied = copied

        # 2. the period: the window plus the mean step gap, at least each track's span in one copy
        span = w1 - w0 + gap
        tracks: dict = {}
        for e in timed:
            if id(e) in copied:
                lo, hi = tracks.get((e.get("pid"), e.get("tid")), (math.inf, -math.inf))
                tracks[(e.get("pid"), e.get("tid"))] = (min(lo, e["ts"]), max(hi, _end(e)))
        self.track_spans = {k: hi - lo for k, (lo, hi) in tracks.items()}
        span = max([span] + [s + 1.0 for s in self.track_spans.values()])
        self.period = float(math.ceil(span))  # whole microseconds: shifted ts keep 3 decimals exactly

        # 3. ids: per kind, the stride (max + 1) and the ids defined by events outside the copies (kept)
        maxid = dict.fromkeys(ID_KINDS, 0)
        once_ids = {k: set() for k in ID_KINDS}
        for e in timed:
            a = e.get("args") or {}
            for key, kind in ARG_KIND.items():
                v = a.get(key)
                if isinstance(v, int):
                    maxid[kind] = max(maxid[kind], v)
                    if id(e) not in copied and key != "Python parent id":
                        once_ids[kind].add(v)
            if e.get("ph") in ("s", "f", "t") and isinstance(e.get("id"), int):
                kind = CORR if e.get("cat") == "ac2g" else FWD
                maxid[kind] = max(maxid[kind], e["id"])
                if id(e) not in copied:
                    once_ids[kind].add(e["id"])
        self.stride = {k: v + 1 for k, v in maxid.items()}
        self.once_ids = once_ids
        self.timed = timed

    # -- templates -----------------------------------------------------------------------------

    def _template(self, e, copied: bool, stretch: float = 0.0, shift: float = 0.0):
        """(format string, slots): Kineto's layout; copied events get slots for what each copy changes."""
        slots: list = []

        def slot(kind, base) -> str:
            slots.append((kind, base))
            return "{" + str(len(slots) - 1) + "}"

        def esc(s: str) -> str:
            return s.replace("{", "{{").replace("}", "}}")

        def kv(k, v, kind=None) -> str:
            if kind is None:
                return esc(_dumps(k) + ": " + _dumps(v))
            return esc(_dumps(k) + ": ") + slot(kind, v)

        parts = []
        for k, v in e.items():
            if k == "args":
                continue
            if k == "ts" and isinstance(v, (int, float)):
                p = kv(k, v, TS) if copied else esc(_dumps(k) + ": " + "%.3f" % (v + shift))
                parts.append(("\n    " if e.get("ph") == "X" else "") + p)
            elif k == "dur":
                parts.append(kv(k, v + stretch if stretch else v))
            elif k == "name" and copied and isinstance(v, str) and _STEP.match(v):
                parts.append(esc('"name": "ProfilerStep#') + slot(STEP, int(_STEP.match(v).group(1))) + '"')
            elif k == "id" and copied and isinstance(v, int) and e.get("ph") in ("s", "f", "t"):
                kind = CORR if e.get("cat") == "ac2g" else FWD
                parts.append(kv(k, v, None if v in self.once_ids[kind] else kind))
            else:
                parts.append(kv(k, v))
        text = "  {\n    " + ", ".join(parts).replace(", \n", ",\n")
        a = e.get("args")
        if a is not None:
            aparts = []
            for k, v in a.items():
                kind = ARG_KIND.get(k)
                if copied and kind is not None and isinstance(v, int) and not (
                        v in self.once_ids[kind] and k in ("Python parent id", "Python id", "External id", "correlation")):
                    aparts.append(kv(k, v, kind))
                else:
                    aparts.append(kv(k, v))
            text += ",\n    " + esc('"args": {') + "\n      " + ", ".join(aparts) + "\n    " + esc("}")
        text = esc("  {\n    ") + text[len("  {\n    "):] + esc("\n  }")
        if not slots:
            text = text.replace("{{", "{").replace("}}", "}")
        return text, tuple(slots)

    def templates(self, n: int):
        """(copy-0 templates in the source's order, templates of the copied events)."""
        stretch = (n - 1) * self.period
        first, copies = [], []
        for e in self.doc["traceEvents"]:
            if e.get("ph") == "M" or "ts" not in e:
                first.append(self._template(e, False))
            elif id(e) in self.copied:
                t = self._template(e, True)
                first.append(t)
                copies.append(t)
            elif e["ts"] < self.w0 or (e["ts"] < self.w1 and (e.get("cat") in GPU_CATS or e.get("ph") in ("s", "f", "t"))):
                # before the window (the profiler's start; frames around the whole loop: stretched over
                # every copy), or the warm-up's GPU tail in it: once, where it was
                first.append(self._template(e, False, stretch=stretch if _end(e) > self.w1 + 1000.0 else 0.0))
            else:  # after the window, or the frames that stop the profiler: after the last copy
                first.append(self._template(e, False, shift=stretch))
        return first, copies

    def render(self, tpls, k: int) -> str:
        dt = k * self.period
        off = {kind: k * s for kind, s in self.stride.items()}
        dstep = k * self.n_steps
        out = []
        for text, slots in tpls:
            if not slots:
                out.append(text)
                continue
            vals = []
            for kind, base in slots:
                if kind == TS:
                    vals.append("%.3f" % (base + dt))
                elif kind == STEP:
                    vals.append(base + dstep)
                else:
                    vals.append(base + off[kind])
            out.append(text.format(*vals))
        return ",\n".join(out)

    def copy_bytes(self) -> int:
        _, copies = self.templates(2)
        return len(self.render(copies, 1).encode()) + 2

    # -- the file ------------------------------------------------------------------------------

    def header(self) -> str:
        keys = list(self.doc)
        before = keys[:keys.index("traceEvents")]
        lines = ["{"]
        for k in before:
            lines.append(f"  {_dumps(k)}: {_dumps(self.doc[k])},")
        if "distributedInfo" not in self.doc:
            lines.append('  "distributedInfo": {"rank": 0, "world_size": 1},')
        lines.append('  "traceEvents": [')
        return "\n".join(lines) + "\n"

    def trailer(self) -> str:
        keys = list(self.doc)
        after = keys[keys.index("traceEvents") + 1:]
        t = "\n  ]"
        for k in after:
            t += f",\n  {_dumps(k)}: {_dumps(self.doc[k])}"
        return t + "\n}\n"

    def write(self, n: int, json_path: str, gz_path: str) -> int:
        first, copies = self.templates(n)
        total = 0
        with open(json_path, "wb") as fj, gzip.open(gz_path, "wb", compresslevel=6) as fz:
            def put(s: str):
                nonlocal total
                b = s.encode()
                fj.write(b)
                fz.write(b)
                total += len(b)
            put(self.header())
            put(self.render(first, 0))
            for k in range(1, n):
                put(",\n" + self.render(copies, k))
            put(self.trailer())
        return total

    # -- run.json and lines.json ---------------------------------------------------------------

    def run_json(self, n: int, trace_name: str) -> dict:
        run = _load(os.path.join(self.source_run, "run.json"))
        run["trace"] = trace_name
        run["active_steps"] = list(range(self.first_step, self.first_step + n * self.n_steps))
        if run.get("profiled_step_ms"):
            run["profiled_step_ms"] = list(run["profiled_step_ms"]) * n
        run["synthetic"] = {"source": os.path.relpath(self.source_run, ROOT), "copies": n,
                            "period_us": self.period, "window_us": [self.w0, self.w1],
                            "built_by": "bench/large_traces.py"}
        return run

    def lines_json(self, n: int) -> dict | None:
        p = os.path.join(self.source_run, "lines.json")
        if not os.path.isfile(p):
            return None
        doc = _load(p)
        anchors_ts = sorted(e["ts"] for e in self.timed if e.get("name") == "trainprof#anchor")
        tight = doc.get("tight_anchors") or []
        if tight and len(tight) == len(anchors_ts):
            offs = [t * 1000.0 - (b + a) / 2 for (b, a), t in zip(tight, anchors_ts)]
        else:  # the coarse anchors: (step started, before, after) around prof.step()
            starts = {int(_STEP.match(e["name"]).group(1)): e["ts"] for e in self.timed
                      if e.get("cat") == "user_annotation" and _STEP.match(e.get("name", ""))}
            offs = [starts[num] * 1000.0 - (b + a) / 2 for num, b, a in doc.get("anchors") or [] if num in starts]
        if not offs:
            return None
        off = statistics.median(offs)  # trace ns - recorder ns
        r0, r1 = self.w0 * 1000.0 - off, self.w1 * 1000.0 - off
        p_ns = int(self.period * 1000)
        last_ns = (n - 1) * p_ns
        before = [e for e in doc.get("events") or [] if e[0] < r0]
        inside = [e for e in doc.get("events") or [] if r0 <= e[0] < r1]
        after = [e for e in doc.get("events") or [] if e[0] >= r1]
        events = before + [[e[0] + k * p_ns] + e[1:] for k in range(n) for e in inside] + \
            [[e[0] + last_ns] + e[1:] for e in after]
        out = dict(doc)
        out["events"] = events
        lo, hi = self.first_step, self.first_step + self.n_steps
        anchors = []
        for num, b, a in doc.get("anchors") or []:
            if lo <= num < hi:
                anchors += [[num + k * self.n_steps, b + k * p_ns, a + k * p_ns] for k in range(n)]
            elif num >= hi:
                anchors.append([num + (n - 1) * self.n_steps, b + last_ns, a + last_ns])
            else:
                anchors.append([num, b, a])
        out["anchors"] = sorted(anchors)
        if tight:
            t_in = [t for t in tight if r0 <= (t[0] + t[1]) / 2 < r1]
            t_out = [t for t in tight if not r0 <= (t[0] + t[1]) / 2 < r1]
            out["tight_anchors"] = sorted([[b + k * p_ns, a + k * p_ns] for k in range(n) for b, a in t_in] +
                                          [[b + (last_ns if b >= r1 else 0), a + (last_ns if b >= r1 else 0)]
                                           for b, a in t_out])
        return out


def check(path: str) -> list[str]:
    """Consistency of a built trace: ids unique per copy, every launch's GPU work and flows linked
    within one copy, one ProfilerStep#N per number, no overlap on a GPU stream."""
    doc = _read_json(path)
    ev = doc["traceEvents"]
    problems = []
    X = [e for e in ev if e.get("ph") == "X"]
    gpu = [e for e in X if e.get("cat") in GPU_CATS - {"gpu_user_annotation"}]
    rt = [e for e in X if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in (e.get("args") or {})]
    rt_corr = {}
    for e in rt:
        c = e["args"]["correlation"]
        if c in rt_corr:
            problems.append(f"correlation {c} on two runtime calls")
        rt_corr[c] = e
    orphans = sum(1 for g in gpu if g["args"].get("correlation") not in rt_corr)
    late = sum(1 for g in gpu if g["args"].get("correlation") in rt_corr and g["ts"] < rt_corr[g["args"]["correlation"]]["ts"])
    if late:
        problems.append(f"{late} GPU events start before their launch")
    pyids = [e["args"]["Python id"] for e in X if e.get("cat") == "python_function"]
    if len(pyids) != len(set(pyids)):
        problems.append("duplicate Python ids")
    ext = [e["args"]["External id"] for e in X if e.get("cat") == "cpu_op"]
    if len(ext) != len(set(ext)):
        problems.append("duplicate External ids among cpu_ops")
    steps = [int(_STEP.match(e["name"]).group(1)) for e in X if e.get("cat") == "user_annotation" and _STEP.match(e["name"])]
    if sorted(steps) != list(range(min(steps), max(steps) + 1)):
        problems.append("ProfilerStep numbers are not one each, contiguous")
    flows: dict = {}
    for e in ev:
        if e.get("ph") in ("s", "f"):
            flows.setdefault((e.get("cat"), e.get("id")), []).append(e["ph"])
    bad = sum(1 for v in flows.values() if sorted(v) != ["f", "s"])
    by_stream: dict = {}
    for g in gpu:
        by_stream.setdefault((g.get("pid"), g.get("tid")), []).append((g["ts"], _end(g)))
    overlap = 0
    for iv in by_stream.values():
        iv.sort()
        overlap += sum(1 for a, b in itertools.pairwise(iv) if b[0] < a[1] - 0.01)
    if overlap:
        problems.append(f"{overlap} overlapping GPU events on one stream")
    print(f"{path}: {len(ev)} events, {len(steps)} ProfilerSteps, {len(gpu)} GPU events ({orphans} with no launch "
          f"in the trace: the warm-up's tail), {len(flows)} flows ({bad} not one s + one f)")
    for p in problems:
        print("  PROBLEM:", p)
    return problems


def size_label(mb: int) -> str:
    return f"{mb}mb"


def run_dirs(out: str, name: str, mb: int) -> tuple[str, str]:
    base = os.path.join(out, f"{name}-{size_label(mb)}")
    return base + "-json", base + "-gz"


def build(args) -> None:
    plan = Plan(args.source)
    name = os.path.basename(os.path.normpath(args.source))
    per_copy = plan.copy_bytes()
    fixed = len(plan.header()) + len(plan.trailer())
    print(f"{name}: {len(plan.doc['traceEvents'])} events, {len(plan.copied)} copied per step window "
          f"({plan.n_steps} steps from #{plan.first_step}), period {plan.period / 1000:.1f} ms, "
          f"~{per_copy / MB:.2f} MB a copy", flush=True)
    script = _load(os.path.join(args.source, "run.json")).get("script") or ""
    script_copy = os.path.join(args.source, os.path.basename(script)) if script else None
    trace_base = os.path.basename(plan.trace_path)
    trace_base = trace_base.removesuffix(".gz")
    for mb in args.sizes:
        n = max(1, round((mb * MB - fixed) / per_copy))
        dj, dz = run_dirs(args.out, name, mb)
        for d in (dj, dz):
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        t = time.perf_counter()
        size = plan.write(n, os.path.join(dj, trace_base), os.path.join(dz, trace_base + ".gz"))
        gz_size = os.path.getsize(os.path.join(dz, trace_base + ".gz"))
        lines = plan.lines_json(n)
        for d, fname in ((dj, trace_base), (dz, trace_base + ".gz")):
            with open(os.path.join(d, "run.json"), "w") as f:
                json.dump(plan.run_json(n, fname), f, indent=1)
            if lines is not None:
                with open(os.path.join(d, "lines.json"), "w") as f:
                    json.dump(lines, f)
            if script_copy and os.path.isfile(script_copy):
                shutil.copy(script_copy, d)
        meta = {"name": name, "mb": mb, "copies": n, "steps": n * plan.n_steps, "json_bytes": size,
                "gz_bytes": gz_size, "period_us": plan.period, "build_s": round(time.perf_counter() - t, 1),
                "events": n * len(plan.copied) + len(plan.doc["traceEvents"]) - len(plan.copied)}
        with open(os.path.join(args.out, f"{name}-{size_label(mb)}.meta.json"), "w") as f:
            json.dump(meta, f)
        print(f"  {size_label(mb)}: {n} copies, {n * plan.n_steps} steps, {meta['events']} events, "
              f"{size / MB:.0f} MB json, {gz_size / MB:.0f} MB gz, {meta['build_s']} s", flush=True)


# ---------------------------------------------------------------------------------------------
# children: one measure each, in a fresh process; print one JSON line
# ---------------------------------------------------------------------------------------------

def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def _proc_status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return out


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _min_decoder():
    """The fastest typed decode: a minimal Struct with the fields trainprof reads, untracked by the GC."""
    import msgspec

    f = msgspec.field
    args = msgspec.defstruct("Args", [
        ("correlation", int | str | None, None),
        ("external_id", int | str | None, f(default=None, name="External id")),
        ("python_id", int | None, f(default=None, name="Python id")),
        ("python_parent_id", int | None, f(default=None, name="Python parent id")),
        ("stream", int | str | None, None),
        ("bytes", int | float | None, None),
        ("name", str | None, None),
        ("input_dims", msgspec.Raw, f(default_factory=msgspec.Raw, name="Input Dims")),
    ], gc=False)
    event = msgspec.defstruct("Event", [
        ("ph", str, ""), ("name", str, ""), ("cat", str, ""), ("pid", int | str, 0), ("tid", int | str, 0),
        ("ts", float, 0.0), ("dur", float, 0.0), ("args", args | None, None),
    ], gc=False)
    trace_file = msgspec.defstruct("File", [("traceEvents", list[event], f(default_factory=list))], gc=False)
    return msgspec.json.Decoder(trace_file)


def _time_analysis_parts(engine) -> dict:
    """Wrap the analysis' phases in timers (in this process only; trainprof is not changed):
    name -> [calls, inclusive seconds]. A rule's detect includes the Context properties it is the
    first to ask for (the replay timeline, its calibration)."""
    acc: dict = {}

    def wrap(obj, attr, key, setter=setattr, consume=False):
        f = getattr(obj, attr)
        acc.setdefault(key, [0, 0.0])

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return list(f(*a, **k)) if consume else f(*a, **k)  # detect may be a generator
            finally:
                acc[key][0] += 1
                acc[key][1] += time.perf_counter() - t
        setter(obj, attr, timed)

    R = sys.modules["trainprof.estimate.replay"]
    E = sys.modules["trainprof.estimate"]
    wrap(R, "replay", "estimate.replay.replay (every what-if replay)")
    E.replay = R.replay  # estimate_all's own binding: the same timer
    wrap(R, "calibrate", "estimate.replay.calibrate (profiler-overhead calibration)")
    wrap(R, "build_timeline", "estimate.replay.build_timeline")
    wrap(engine, "estimate_all", "estimate.estimate_all (all estimates, calibration included)")
    wrap(engine, "build_line_map", "trace.lines.build_line_map (line attribution)")
    wrap(engine, "unprofiled_line_costs", "trace.lines.unprofiled_line_costs")
    wrap(engine, "breakdown", "trace.breakdown.breakdown")
    wrap(engine, "step_view", "trace.step_view.step_view")
    wrap(engine, "index_source", "source.index_source")
    wrap(engine.M, "steps", "trace.measures.steps")
    for rule in engine.all_rules():
        wrap(rule, "detect", f"rules: {rule.id}.detect", setter=object.__setattr__, consume=True)
    return acc


def child(kind: str, target: str) -> None:
    t_imp = time.perf_counter()
    extra: dict = {}
    trace = target if not os.path.isdir(target) else None if kind == "hta" else _find_trace(target)
    if kind == "read":
        t0 = time.perf_counter()
        data = _read(trace)
        extra["bytes"] = len(data)
    elif kind == "orjson":
        import orjson
        t0 = time.perf_counter()
        doc = orjson.loads(_read(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "orjson_nogc":
        import gc

        import orjson
        t0 = time.perf_counter()
        gc.disable()
        doc = orjson.loads(_read(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "json":
        t0 = time.perf_counter()
        doc = json.loads(_read(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "msgspec_dict":
        import msgspec
        t0 = time.perf_counter()
        doc = msgspec.json.decode(_read(trace))
        extra["events"] = len(doc["traceEvents"])
    elif kind == "msgspec_struct":
        dec = _min_decoder()
        t0 = time.perf_counter()
        doc = dec.decode(_read(trace))
        extra["events"] = len(doc.traceEvents)
    elif kind == "msgspec_tp":
        from trainprof.trace.decode import whole_decoder
        t0 = time.perf_counter()
        doc = whole_decoder.decode(_read(trace))
        extra["events"] = len(doc.traceEvents)
    elif kind == "ijson":
        import ijson
        t0 = time.perf_counter()
        n = 0
        with (gzip.open(trace, "rb") if trace.endswith(".gz") else open(trace, "rb")) as f:
            for _ in ijson.items(f, "traceEvents.item", use_float=True):
                n += 1
        extra["events"] = n
        extra["backend"] = ijson.backend
    elif kind == "tp_load":
        from trainprof.trace.load import load_trace
        t0 = time.perf_counter()
        tr = load_trace(trace)
        extra["events"] = len(tr)
    elif kind in ("tp_report", "tp_report_serial"):
        if kind == "tp_report_serial":
            os.environ["TRAINPROF_JOBS"] = "1"  # the streamed load, all in this one process
        from trainprof.cli import main
        t0 = time.perf_counter()
        try:
            main(["report", target, "-q"], standalone_mode=False)
        except SystemExit as e:
            if e.code:
                raise
    elif kind == "tp_profile":
        import cProfile
        import io
        import pstats

        from trainprof.cli import main
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        main(["report", target, "-q"], standalone_mode=False)
        prof.disable()
        s = io.StringIO()
        st = pstats.Stats(prof, stream=s)
        st.sort_stats("cumulative").print_stats(25)
        extra["cumulative"] = s.getvalue()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        extra["tottime"] = s.getvalue()
        # trainprof's own phases, each with its cumulative time: where the analysis goes
        phases = {"read_bytes", "merge", "load_trace", "steps", "build_line_map", "refine_offset",
                  "unprofiled_line_costs", "index_source", "detect", "estimate_all", "calibrate", "_solve",
                  "build_timeline", "replay", "breakdown", "step_view", "_finish", "write", "render"}
        rows = []
        for (fname, line, func), (cc, nc, tt, ct, _) in st.stats.items():
            rel = os.path.relpath(fname, ROOT) if fname.startswith(ROOT) else fname
            if func in phases and rel.startswith(("trainprof", "rules")):
                rows.append([f"{rel}:{line}({func})", nc, round(tt, 3), round(ct, 3)])
        extra["phases"] = sorted(rows, key=lambda r: -r[3])
    elif kind == "tp_stages":
        import gc

        from trainprof import engine
        from trainprof.cli import _finish
        from trainprof.trace import load as L
        stages = []

        def mark(name, t):
            st = _proc_status()
            stages.append({"stage": name, "s": round(time.perf_counter() - t, 3), "rss_mb": round(st["VmRSS"]),
                           "peak_mb": round(st["VmHWM"])})
            _reset_peak()
            return time.perf_counter()

        t0 = t = time.perf_counter()
        _reset_peak()
        tr = L.load_trace(trace)
        t = mark("load_trace: read, gunzip, cut into pieces, decode (in worker processes), merge", t)
        gc.collect()
        t = mark("gc.collect()", t)
        parts = _time_analysis_parts(engine)
        orig = engine.load_trace
        engine.load_trace = lambda *a, **k: tr
        try:
            an = engine.analyze(target)
        finally:
            engine.load_trace = orig
        t = mark("analyze: steps, line map, rules, estimates (trace already loaded)", t)
        _finish(an, an.run_dir, None, None, False, True)
        t = mark("write analysis.json + report.html", t)
        extra["stages"] = stages
        extra["analysis_parts"] = sorted(([k, n, round(t, 3)] for k, (n, t) in parts.items() if n),
                                         key=lambda r: -r[2])
    elif kind == "hta":
        from hta.trace_analysis import TraceAnalysis
        t0 = time.perf_counter()
        an = TraceAnalysis(trace_dir=target)
        t1 = time.perf_counter()
        tb = an.get_temporal_breakdown(visualize=False)
        t2 = time.perf_counter()
        idle = an.get_idle_time_breakdown(visualize=False)
        t3 = time.perf_counter()
        extra.update(load_s=round(t1 - t0, 3), temporal_s=round(t2 - t1, 3), idle_s=round(t3 - t2, 3),
                     temporal=tb.to_dict("records"), idle=idle[0].to_dict("records"))
    else:
        raise SystemExit(f"unknown kind {kind}")
    t1 = time.perf_counter()
    if kind.startswith("tp_"):  # the loader's worker processes, if it started any (joined by now)
        import resource
        me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        extra.update(cpu_s=round(me.ru_utime + me.ru_stime, 2), workers_cpu_s=round(ch.ru_utime + ch.ru_stime, 2),
                     workers_peak_mb=round(ch.ru_maxrss / 1024), jobs=os.environ.get("TRAINPROF_JOBS", "auto"))
        if ch.ru_maxrss:
            from trainprof.trace.load import MAX_WORKERS
            extra["workers_n"] = int(os.environ.get("TRAINPROF_JOBS") or min(os.cpu_count() or 1, MAX_WORKERS))
    print(json.dumps({"op_s": round(t1 - t0, 3), "import_s": round(t0 - t_imp, 3), **extra}, default=str))


# ---------------------------------------------------------------------------------------------
# measure
# ---------------------------------------------------------------------------------------------

BARE = ["read", "orjson", "orjson_nogc", "json", "msgspec_dict", "msgspec_struct", "msgspec_tp", "ijson"]
# (kind, formats): what runs on the .json, what on the .json.gz
PLAN = [("read", ("json", "gz")), ("orjson", ("json",)), ("orjson_nogc", ("json",)), ("json", ("json",)),
        ("msgspec_dict", ("json",)), ("msgspec_struct", ("json", "gz")), ("msgspec_tp", ("json",)), ("ijson", ("json",)),
        ("tp_load", ("json", "gz")), ("tp_report", ("json", "gz")), ("tp_report_serial", ("json", "gz")),
        ("tp_stages", ("gz",)), ("tp_profile", ("gz",)), ("hta", ("gz",))]
PROFILE_KINDS = ("tp_profile",)
# The baseline every ratio divides by, and trainprof report against it: best of 3 fresh processes (one
# run varies by ~15% on the CPU host, ~30% on the device host).
REPEAT = {"msgspec_struct": 3, "msgspec_tp": 3, "tp_report": 3}


def _tree_pss_mb(pid: int) -> float:
    """Proportional set size of pid and its child processes (the loader's workers): pages shared
    between them (a forked worker's copy of its parent) are counted once, split among them."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in _slurp(f"/proc/{p}/smaps_rollup").splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) / 1024.0
                    break
            todo += [int(c) for c in _slurp(f"/proc/{p}/task/{p}/children").split()]
        except (OSError, ValueError):
            pass
    return total


def spawn_rusage(cmd: list[str], timeout: float | None, log: str) -> dict:
    """Run cmd; wall time, the child's own peak RSS from os.wait4, and the peak of its process
    tree's PSS, sampled every 50 ms (the loader's worker processes included)."""
    t = time.perf_counter()
    out_path = log + ".out"
    with open(log, "w") as err, open(out_path, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=ROOT, start_new_session=True)
        status, rus, rc = "ok", None, None
        deadline = None if timeout is None else t + timeout
        tree_peak = 0.0
        while True:
            tree_peak = max(tree_peak, _tree_pss_mb(p.pid))
            pid, st, rus = os.wait4(p.pid, os.WNOHANG)
            if pid:
                rc = os.waitstatus_to_exitcode(st)
                break
            if deadline is not None and time.perf_counter() > deadline:
                os.killpg(p.pid, 9)
                _, st, rus = os.wait4(p.pid, 0)
                rc, status = os.waitstatus_to_exitcode(st), "timeout"
                break
            time.sleep(0.05)
        p.returncode = rc
    wall = time.perf_counter() - t
    res = {"status": status if rc == 0 or status == "timeout" else "error", "rc": rc, "wall_s": round(wall, 2),
           "maxrss_mb": round(rus.ru_maxrss / 1024.0, 1), "tree_pss_mb": round(tree_peak, 1)}
    text = _slurp(out_path).strip().splitlines()
    if status == "ok" and rc == 0 and text:
        try:
            res.update(json.loads(text[-1]))
        except json.JSONDecodeError:
            res["stdout"] = text[-1][:500]
    elif rc:
        res["stderr_tail"] = _slurp(log)[-1500:]
    return res


def code_state() -> str:
    """A hash of trainprof's code as it is now (the package, rules/, templates/): other work may change
    it between two measures; the report says which measures ran on which state."""
    import hashlib

    h = hashlib.sha1()
    for top in ("trainprof", "rules", "templates"):
        for d, dirs, files in sorted(os.walk(os.path.join(ROOT, top))):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            for f in sorted(files):
                if f.endswith((".py", ".j2", ".html", ".js", ".css", ".toml", ".json")):
                    h.update(f.encode())
                    h.update(_slurp(os.path.join(d, f), "rb"))
    return h.hexdigest()[:10]


def load_results(out: str) -> list[dict]:
    p = os.path.join(out, "results.jsonl")
    if not os.path.isfile(p):
        return []
    return [json.loads(x) for x in open(p) if x.strip()]


def hta_dir(out: str, rd: str, fmt: str) -> str:
    d = os.path.join(out, "hta", os.path.basename(rd))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    trace = _find_trace(rd)
    os.symlink(trace, os.path.join(d, "rank-0.pt.trace.json" + (".gz" if fmt == "gz" else "")))
    return d


def measure(args) -> None:
    name = os.path.basename(os.path.normpath(args.source))
    res_path = os.path.join(args.out, "results.jsonl")
    logs = os.path.join(args.out, "logs")
    os.makedirs(logs, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    profile_sizes = set(args.profile_sizes or [min(args.sizes)])
    rate: dict = {}  # kind -> seconds per MB, from the last size measured
    for prev in load_results(args.out):
        if prev.get("status") == "ok" and prev.get("op_s"):
            rate[prev["kind"]] = max(rate.get(prev["kind"], 0), prev["op_s"] / prev["mb"])
    for mb in sorted(args.sizes):
        meta = _load(os.path.join(args.out, f"{name}-{size_label(mb)}.meta.json"))
        dj, dz = run_dirs(args.out, name, mb)
        for kind, fmts in PLAN:
            if only and kind not in only:
                continue
            if kind in PROFILE_KINDS and mb not in profile_sizes:
                continue
            for fmt in fmts:
                if args.formats and fmt not in args.formats:
                    continue
                rd = dj if fmt == "json" else dz
                rec = {"name": name, "mb": mb, "kind": kind, "fmt": fmt, "json_bytes": meta["json_bytes"],
                       "gz_bytes": meta["gz_bytes"], "events": meta["events"], "steps": meta["steps"],
                       "time": time.strftime("%Y-%m-%d %H:%M:%S"), "code": code_state(), "git": _git()}
                budget = {"ijson": args.ijson_max_s, "hta": args.hta_timeout}.get(kind)
                if budget and kind in rate and rate[kind] * mb > budget:
                    rec.update(status="skipped", why=f"the previous size's rate says ~{rate[kind] * mb:.0f} s, "
                                                     f"over the {budget:.0f} s budget")
                    print(f"{size_label(mb)} {fmt:4} {kind:15} skipped ({rec['why']})", flush=True)
                else:
                    py = args.hta_python if kind == "hta" else sys.executable
                    target = hta_dir(args.out, rd, fmt) if kind == "hta" else rd
                    if kind in BARE or kind == "tp_load":
                        target = _find_trace(rd)
                    log = os.path.join(logs, f"{size_label(mb)}-{fmt}-{kind}.log")
                    runs = []
                    for _ in range(REPEAT.get(kind, 1)):
                        runs.append(spawn_rusage([py, os.path.abspath(__file__), "_child", kind, target],
                                                 args.hta_timeout if kind == "hta" else args.timeout, log))
                    ok = [x for x in runs if x["status"] == "ok" and x.get("op_s") is not None]
                    r = min(ok, key=lambda x: x["op_s"]) if ok else runs[-1]
                    if len(runs) > 1:
                        r["runs_op_s"] = [x.get("op_s") for x in runs]
                    rec.update(r)
                    if rec["status"] == "ok" and rec.get("op_s"):
                        rate[kind] = rec["op_s"] / mb
                    elif rec["status"] == "timeout":
                        rate[kind] = rec["wall_s"] / mb
                    print(f"{size_label(mb)} {fmt:4} {kind:15} {rec['status']:7} op {rec.get('op_s', '-')!s:>8} s  "
                          f"process {rec['wall_s']:8.1f} s  peak {rec['maxrss_mb']:8.0f} MB", flush=True)
                with open(res_path, "a") as f:
                    f.write(json.dumps(rec, default=str) + "\n")


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

LABEL = {
    "read": "read bytes (+gunzip for .gz)",
    "orjson": "orjson.loads",
    "orjson_nogc": "orjson.loads, GC disabled",
    "json": "json.loads",
    "msgspec_dict": "msgspec.json.decode -> dicts",
    "msgspec_struct": "msgspec -> minimal Struct (gc=False)",
    "msgspec_tp": "msgspec -> trainprof's structs (decode only)",
    "ijson": "ijson.items streamed (yajl2_c)",
    "tp_load": "trainprof load_trace",
    "tp_report": "trainprof report -q (load+analysis+report)",
    "tp_report_serial": "the same, TRAINPROF_JOBS=1 (no worker processes)",
    "tp_stages": "trainprof report, staged (see below)",
    "tp_profile": "trainprof report under cProfile",
    "hta": "HTA 0.5.0 load + temporal + idle breakdown",
}
DECODERS = ["orjson", "orjson_nogc", "json", "msgspec_dict", "msgspec_struct", "msgspec_tp", "ijson"]


def _versions(hta_python: str | None) -> dict:
    v = {"python": platform.python_version()}
    for mod in ("msgspec", "orjson", "ijson", "numpy", "trainprof", "torch"):
        try:
            m = __import__(mod)
            v[mod] = getattr(m, "__version__", "?")
        except ImportError:
            v[mod] = "not installed"
    try:
        import ijson
        v["ijson"] += f" ({ijson.backend})"
    except ImportError:
        pass
    if hta_python and os.path.exists(hta_python):
        code = ("import importlib.metadata as m, json, platform;"
                "print(json.dumps({k: m.version(k) for k in ('HolisticTraceAnalysis','pandas','numpy')} "
                "| {'python': platform.python_version()}))")
        try:
            v["hta_env"] = json.loads(subprocess.run([hta_python, "-c", code], capture_output=True, text=True,
                                                     timeout=60, check=False).stdout)
        except Exception as e:  # noqa: BLE001
            v["hta_env"] = {"error": str(e)}
    return v


def _machine() -> str:
    cpu = "?"
    try:
        for line in _slurp("/proc/cpuinfo").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in _slurp("/proc/meminfo").splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem} RAM, {platform.system()} {platform.release()}"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "trainprof", "rules"], cwd=ROOT, capture_output=True,
                               text=True, check=False).stdout.strip()
        return head + (" + uncommitted changes to trainprof/ and rules/" if dirty else "")
    except OSError:
        return "?"


def _latest(results: list[dict]) -> dict:
    out = {}
    for r in results:
        out[(r["mb"], r["kind"], r["fmt"])] = r
    return out


def _fmt(x, nd=1) -> str:
    if x is None:
        return "-"
    return f"{x:.{nd}f}" if x < 100 else f"{x:.0f}"


def report(args) -> None:
    results = load_results(args.out)
    if not results:
        raise SystemExit(f"no results in {args.out}/results.jsonl: run measure first")
    by = _latest(results)
    sizes = sorted({r["mb"] for r in results})
    v = _versions(args.hta_python)
    name = results[0]["name"]
    L = []
    L.append("# Large traces: trainprof against bare JSON decoders and HolisticTraceAnalysis\n")
    L.append(f"Written by `python bench/large_traces.py report` from `{args.out}/results.jsonl` "
             f"({time.strftime('%Y-%m-%d')}). Re-run: `python bench/large_traces.py all --hta-python VENV/bin/python`"
             " (see the script's docstring).\n")
    L.append("## Setup\n")
    L.append(f"- Machine: {_machine()}; no GPU. Every measure ran alone, one at a time, in a fresh process.")
    L.append(f"- Python {v['python']}: msgspec {v['msgspec']}, orjson {v['orjson']}, ijson {v['ijson']}, "
             f"numpy {v['numpy']}, torch {v['torch']}, trainprof {v['trainprof']} (`{_git()}`).")
    states: dict = {}
    for r in by.values():
        if r["kind"].startswith("tp_") or r["kind"] == "msgspec_tp":
            states.setdefault((r.get("git", "?"), r.get("code", "?")), []).append(r)
    for (g, c), rs in sorted(states.items(), key=lambda kv: -len(kv[1])):
        when = sorted(r["time"] for r in rs)
        kinds = ", ".join(sorted({r["kind"] for r in rs}))
        g = "not recorded" if g == "?" else f"`{g}`"
        L.append(f"- {len(rs)} trainprof rows ({kinds}) measured on git {g}, code state `{c}` (a hash of "
                 f"trainprof/, rules/, templates/: `code_state()`), {when[0]} to {when[-1]}; the code now: "
                 f"`{code_state()}`.")
    he = v.get("hta_env") or {}
    if he:
        L.append(f"- HTA: HolisticTraceAnalysis {he.get('HolisticTraceAnalysis')} in its own venv (Python "
                 f"{he.get('python')}, pandas {he.get('pandas')}, numpy {he.get('numpy')}); its default parser "
                 "backend (json.loads of the whole file, then pandas).")
    metas = []
    for mb in sizes:
        p = os.path.join(args.out, f"{name}-{size_label(mb)}.meta.json")
        if os.path.isfile(p):
            metas.append(_load(p))
    if metas:
        m0 = metas[0]
        L.append(f"- Traces: `sample_traces/{name}` (a real H100 run: 3 recorded steps, "
                 f"{m0['period_us'] / 1000:.1f} ms a copy) repeated; see the script's docstring for how ids, "
                 "flows, ProfilerStep numbers, run.json and lines.json are kept consistent.\n")
        L.append("| size | copies | steps | events | .json MB | .json.gz MB |")
        L.append("|---|---|---|---|---|---|")
        for m in metas:
            L.append(f"| {size_label(m['mb'])} | {m['copies']} | {m['steps']} | {m['events']:,} | "
                     f"{m['json_bytes'] / MB:.0f} | {m['gz_bytes'] / MB:.1f} |")
        L.append("")
    L.append("Columns: **op s** is the operation's wall time inside the child (file read included, interpreter "
             "start-up and imports not); **process s** the child process's whole wall time; **peak RSS** its "
             "ru_maxrss (the largest of its processes; trainprof's loader runs worker processes on large traces, "
             "whose memory the note's process-tree PSS, sampled every 50 ms, adds in); **x JSON** the peak RSS over the .json's size; **x fastest** op s over the fastest bare "
             "decode of the same file format (for .json.gz: the minimal Struct decode of the .json.gz, gunzip "
             "included).\n")

    checks = []
    for mb in sizes:
        L.append(f"## {size_label(mb)}\n")
        json_mb = next((r["json_bytes"] for r in results if r["mb"] == mb), mb * MB) / MB
        fastest = {}
        for fmt in ("json", "gz"):
            cands = [(by[(mb, k, fmt)]["op_s"], k) for k in DECODERS
                     if (mb, k, fmt) in by and by[(mb, k, fmt)].get("status") == "ok"]
            if cands:
                fastest[fmt] = min(cands)
        L.append("| measure | file | op s | process s | peak RSS MB | x JSON | x fastest | note |")
        L.append("|---|---|---|---|---|---|---|---|")
        for kind, fmts in PLAN:
            for fmt in fmts:
                r = by.get((mb, kind, fmt))
                if r is None:
                    continue
                fe = ".json" if fmt == "json" else ".json.gz"
                if r["status"] != "ok":
                    note = r.get("why") or (f"killed after {r['wall_s']:.0f} s" if r["status"] == "timeout"
                                            else f"failed (rc {r.get('rc')})")
                    L.append(f"| {LABEL[kind]} | {fe} | {r['status']} | {_fmt(r.get('wall_s'))} | "
                             f"{_fmt(r.get('maxrss_mb'), 0)} | | | {note} |")
                    continue
                ratio = r["op_s"] / fastest[fmt][0] if fmt in fastest else None
                note = ""
                if kind == "hta":
                    note = f"load {r.get('load_s')} s, temporal {r.get('temporal_s')} s, idle {r.get('idle_s')} s"
                elif fastest.get(fmt, (None, None))[1] == kind:
                    note = "fastest bare decode"
                elif r.get("workers_cpu_s"):
                    note = (f"CPU: {r['cpu_s']} s here + {r['workers_cpu_s']} s in the loader's worker processes; "
                            f"peak PSS of the process tree {r.get('tree_pss_mb', '?')} MB")
                if r.get("runs_op_s"):
                    note += f" (best of {len(r['runs_op_s'])}: {', '.join(str(x) for x in r['runs_op_s'])} s)"
                L.append(f"| {LABEL[kind]} | {fe} | {_fmt(r['op_s'], 2)} | {_fmt(r['wall_s'])} | "
                         f"{_fmt(r['maxrss_mb'], 0)} | {r['maxrss_mb'] / json_mb:.2f} | "
                         f"{'' if ratio is None else f'{ratio:.1f}x'} | {note} |")
        L.append("")
        st = by.get((mb, "tp_stages", "gz"))
        if st and st.get("stages"):
            L.append("trainprof report on the .json.gz, stage by stage (RSS after the stage; peak during it):\n")
            L.append("| stage | s | RSS MB | peak MB |")
            L.append("|---|---|---|---|")
            for s in st["stages"]:
                L.append(f"| {s['stage']} | {s['s']} | {s['rss_mb']} | {s['peak_mb']} |")
            L.append("")
            if st.get("analysis_parts"):
                L.append("Inside the analyze stage (timers around each phase, no profiler; inclusive, so nested "
                         "phases overlap; a rule's detect includes the Context properties it is first to ask for):\n")
                L.append("| phase | calls | s |")
                L.append("|---|---|---|")
                for k_, n_, t_ in st["analysis_parts"]:
                    if t_ >= 0.005:
                        L.append(f"| {k_} | {n_} | {t_} |")
                L.append("")
        # targets
        for fmt in ("json", "gz"):
            rep, hta = by.get((mb, "tp_report", fmt)), by.get((mb, "hta", fmt))
            if not rep or rep.get("status") != "ok" or fmt not in fastest:
                continue
            c = {"mb": mb, "fmt": fmt, "report_s": rep["op_s"], "report_proc_s": rep["wall_s"],
                 "fastest_s": fastest[fmt][0], "fastest": fastest[fmt][1], "rss_mb": rep["maxrss_mb"],
                 "json_mb": json_mb, "tree_mb": rep.get("tree_pss_mb")}
            if hta:
                c["hta_status"] = hta["status"]
                c["hta_s"] = hta.get("op_s") if hta["status"] == "ok" else hta.get("wall_s")
            checks.append(c)

    L.append("## The issue's targets, checked\n")
    L.append("| size | file | trainprof report s | fastest bare decode s | ratio (target <= 1.5x) | HTA s | HTA / trainprof "
             "(target >= 20x) | peak RSS / JSON size (target <= 2x) |")
    L.append("|---|---|---|---|---|---|---|---|")
    for c in checks:
        ratio = c["report_s"] / c["fastest_s"]
        if c.get("hta_status") == "ok":
            h, hr = f"{c['hta_s']:.1f}", f"{c['hta_s'] / c['report_s']:.1f}x {'ok' if c['hta_s'] / c['report_s'] >= 20 else 'MISS'}"
        elif c.get("hta_status") == "timeout":
            h, hr = f"> {c['hta_s']:.0f} (timeout)", f"> {c['hta_s'] / c['report_s']:.1f}x"
        elif c.get("hta_status"):
            h, hr = c["hta_status"], ""
        else:
            h, hr = "-", ""
        rr = c["rss_mb"] / c["json_mb"]
        tree = (f"; the process tree's peak PSS {c['tree_mb'] / c['json_mb']:.2f}x"
                f" {'ok' if c['tree_mb'] / c['json_mb'] <= 2 else 'MISS'}") if c.get("tree_mb") else ""
        L.append(f"| {size_label(c['mb'])} | {'.json' if c['fmt'] == 'json' else '.json.gz'} | {c['report_s']:.1f} | "
                 f"{c['fastest_s']:.2f} ({c['fastest']}) | {ratio:.1f}x {'ok' if ratio <= 1.5 else 'MISS'} | {h} | {hr} | "
                 f"main process {rr:.2f}x {'ok' if rr <= 2 else 'MISS'}{tree} |")
    L.append("")
    # Findings written by hand live in LARGE_TRACES.md itself, between these markers: kept as they are.
    notes = "<!-- notes:begin -->\n(findings: write them here; `report` keeps this block)\n<!-- notes:end -->"
    if os.path.isfile(args.md):
        m = re.search(r"<!-- notes:begin -->.*?<!-- notes:end -->", _slurp(args.md), re.DOTALL)
        if m:
            notes = m.group(0)
    L.append(notes + "\n")
    prof = [r for r in results if r["kind"] == "tp_profile" and r.get("status") == "ok"]
    if prof:
        p = prof[-1]
        L.append(f"## cProfile of `trainprof report` on the {size_label(p['mb'])} .json.gz\n")
        L.append(f"(cProfile's own overhead inflates per-call Python work: {p['op_s']:.1f} s under the profiler "
                 f"against {by.get((p['mb'], 'tp_report', 'gz'), {}).get('op_s', '?')} s without.) "
                 "Top 25 by cumulative time:\n")
        L.append("```")
        L.append(_trim_pstats(p["cumulative"]))
        L.append("```\n")
        if p.get("phases"):
            L.append("trainprof's phases (cumulative s under cProfile; a rule's `detect` includes the context "
                     "properties it is first to ask for, such as the replay timeline and its calibration):\n")
            L.append("| function | calls | own s | cumulative s |")
            L.append("|---|---|---|---|")
            for name_, nc, tt, ct in p["phases"]:
                if ct >= 0.01:
                    L.append(f"| `{name_}` | {nc} | {tt} | {ct} |")
            L.append("")
        L.append("Top 15 by own time:\n")
        L.append("```")
        L.append(_trim_pstats(p["tottime"]))
        L.append("```\n")
    with open(args.md, "w") as f:
        f.write("\n".join(L).rstrip() + "\n")
    print(f"wrote {args.md}")


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    i = next((k for k, x in enumerate(lines) if x.strip().startswith("ncalls")), 0)
    out = []
    for x in lines[i:]:
        if not x.strip():
            continue
        x = x.replace(ROOT + "/", "")
        x = re.sub(r"/\S*/lib/python3\.\d+/(site-packages/)?", "", x)
        out.append(x[:170])
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------

def main(argv=None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_child"]:
        return child(argv[1], argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cmd", choices=["build", "check", "measure", "report", "all"])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="a run directory to replicate")
    ap.add_argument("--sizes", default="100,500,1000", help="JSON sizes in MB")
    ap.add_argument("--formats", default=None, help="json,gz (default both, as PLAN says)")
    ap.add_argument("--only", default=None, help="measure only these kinds (comma-separated)")
    ap.add_argument("--profile-sizes", default=None, help="sizes to run tp_profile on (default: the smallest)")
    ap.add_argument("--hta-python", default=os.environ.get("HTA_PYTHON", "/tmp/hta-venv/bin/python"))
    ap.add_argument("--hta-timeout", type=float, default=1200.0, help="seconds per HTA run (20 min)")
    ap.add_argument("--ijson-max-s", type=float, default=300.0, help="skip ijson where it would take longer")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per other run")
    ap.add_argument("--md", default=MD, help="where `report` writes (default bench/LARGE_TRACES.md)")
    args = ap.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.formats = set(args.formats.split(",")) if args.formats else None
    args.profile_sizes = [int(s) for s in args.profile_sizes.split(",")] if args.profile_sizes else None
    os.makedirs(args.out, exist_ok=True)
    if args.cmd in ("build", "all"):
        build(args)
    if args.cmd == "check":  # the built traces' consistency (loads each whole: use a small size)
        name = os.path.basename(os.path.normpath(args.source))
        bad = [p for mb in args.sizes for p in check(_find_trace(run_dirs(args.out, name, mb)[1]))]
        check(_find_trace(args.source))
        sys.exit(1 if bad else 0)
    if args.cmd in ("measure", "all"):
        measure(args)
    if args.cmd in ("report", "all"):
        report(args)


if __name__ == "__main__":
    main()
