"""The synthetic trace: what a source run's events become in a trace of N copies of its step window.

A synthetic long trace is made from a real GPU run (default sample_traces/item_sync) by
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

The run.json written next to each trace has active_steps covering every copied step, "trace"
naming the file, "synthetic" saying how it was built, and profiled_step_ms repeated. Its lines.json
is REBUILT the same way: the line log's events inside the window (recorder clock, placed through
the tight anchors) are repeated with the same shift, the anchors and tight anchors renumbered and
shifted, events after the window moved after the last copy; the unprofiled part is kept as it was.
So `trainprof report` does the line attribution on the long trace too, as on a real run.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import statistics

from .common import GPU_CATS, ROOT, STEP_RE, end, find_trace, load, read_json


# slot kinds of an event template
TS, STEP, CORR, EXT, PYID, EVIDX, SEQ, FWD = range(8)
ID_KINDS = (CORR, EXT, PYID, EVIDX, SEQ, FWD)
ARG_KIND = {"correlation": CORR, "External id": EXT, "Python id": PYID, "Python parent id": PYID,
            "Ev Idx": EVIDX, "Sequence number": SEQ}


def _dumps(v) -> str:
    return json.dumps(v, ensure_ascii=False)


class Plan:
    """What a source trace's events become in a trace of N copies of its step window."""

    def __init__(self, source_run: str):
        self.source_run = source_run
        self.trace_path = find_trace(source_run)
        doc = read_json(self.trace_path)
        self.doc = doc
        ev = doc["traceEvents"]
        steps = [e for e in ev if e.get("ph") == "X" and e.get("cat") == "user_annotation"
                 and STEP_RE.match(e.get("name", ""))]
        if not steps:
            raise SystemExit(f"{self.trace_path}: no ProfilerStep spans")
        steps.sort(key=lambda e: e["ts"])
        nums = [int(STEP_RE.match(s["name"]).group(1)) for s in steps]
        self.first_step, self.n_steps = min(nums), max(nums) - min(nums) + 1
        w0, w1 = steps[0]["ts"], max(end(s) for s in steps)
        gaps = [b["ts"] - end(a) for a, b in itertools.pairwise(steps)]
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
                 and end(e) <= w1 + 1000.0}
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
                tracks[(e.get("pid"), e.get("tid"))] = (min(lo, e["ts"]), max(hi, end(e)))
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
            elif k == "name" and copied and isinstance(v, str) and STEP_RE.match(v):
                parts.append(esc('"name": "ProfilerStep#') + slot(STEP, int(STEP_RE.match(v).group(1))) + '"')
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
                first.append(self._template(e, False, stretch=stretch if end(e) > self.w1 + 1000.0 else 0.0))
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
        run = load(os.path.join(self.source_run, "run.json"))
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
        doc = load(p)
        anchors_ts = sorted(e["ts"] for e in self.timed if e.get("name") == "trainprof#anchor")
        tight = doc.get("tight_anchors") or []
        if tight and len(tight) == len(anchors_ts):
            offs = [t * 1000.0 - (b + a) / 2 for (b, a), t in zip(tight, anchors_ts)]
        else:  # the coarse anchors: (step started, before, after) around prof.step()
            starts = {int(STEP_RE.match(e["name"]).group(1)): e["ts"] for e in self.timed
                      if e.get("cat") == "user_annotation" and STEP_RE.match(e.get("name", ""))}
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
