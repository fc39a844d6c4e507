"""One representative recorded step, laid out for drawing: the training thread by what
it does, each GPU stream's busy time, and the spans of the findings' lines.

Positions are fractions of the step (0..1), merged below 1/RESOLUTION of it so that a
step of 100k kernels still draws as a few thousand rectangles. What the page holds is
bounded whatever the trace: at most MAX_STREAMS GPU lanes (the busiest; the view counts
the others) and MAX_LANE_SEGMENTS rectangles a lane (beyond, wider gaps merge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..trace import measures as M
from ..trace.model import KERNEL
from .breakdown import PARTS, activity_spans

if TYPE_CHECKING:
    from ..run import Run

CPU_KINDS = PARTS[:-1]  # drawn over "other CPU", last on top
# parts closer than 1/RESOLUTION of the step merge into one rectangle: fine enough that the
# page's zoom (report.js, down to 1/512 of the step) still shows kernels apart
RESOLUTION = 12000
MAX_MARKED = 6  # findings marked under the timeline
MAX_STREAMS = 8  # GPU streams drawn, the busiest: a trace of hundreds of streams keeps the page small
MAX_RANKS = 8  # ranks drawn in a distributed run, in rank order
MAX_LANE_SEGMENTS = 1500  # rectangles in one lane (all its kinds); beyond, gaps merge at a coarser resolution


def _segments(s: np.ndarray, e: np.ndarray, lo: float, hi: float,
              resolution: int = RESOLUTION) -> list[tuple[float, float]]:
    """Intervals clipped to [lo, hi), merged across gaps under 1/resolution of it, as (x, width) fractions."""
    if not len(s):
        return []
    s, e = np.clip(s, lo, hi), np.clip(e, lo, hi)
    keep = e > s
    s, e = M.merge(s[keep], e[keep])  # sorted, disjoint: ends increase too
    if not len(s):
        return []
    span = hi - lo
    first = np.r_[0, np.flatnonzero(s[1:] - e[:-1] >= span / resolution) + 1]  # a gap of a pixel or more
    last = np.r_[first[1:] - 1, len(s) - 1]
    a, b = s[first], e[last]
    return list(zip(((a - lo) / span).tolist(), np.maximum((b - a) / span, 1 / RESOLUTION / 2).tolist()))


def _lane(parts, lo: float, hi: float) -> tuple[list, int]:
    """(segments, resolution) of a lane drawn from parts [(kind, starts, ends)], with at most
    MAX_LANE_SEGMENTS rectangles: the resolution halves until they fit."""
    res = RESOLUTION
    while True:
        segs = [(x, w, kind) for kind, s, e in parts for x, w in _segments(s, e, lo, hi, res)]
        if len(segs) <= MAX_LANE_SEGMENTS or res <= 8:
            return segs, res
        res //= 2


def step_view(run: Run, findings) -> dict | None:
    """The lanes of the median-length recorded step, and where each top finding's line ran."""
    tr, st = run.trace, run.steps
    if not len(st):
        return None
    k = int(np.argsort(st.dur)[len(st) // 2])
    lo, hi = float(st.start[k]), float(st.end[k])
    if hi <= lo:
        return None
    cpu = activity_spans(run)

    segs, res = _lane([(kind, *cpu[kind]) for kind in CPU_KINDS], lo, hi)
    lanes = [{"name": "training thread", "kind": "cpu", "segments": [(0.0, 1.0, "other_cpu")] + segs,
              "resolution": res}]
    end = tr.end  # (computed on each access)
    g = M.gpu_mask(tr) & (end > lo) & (tr.ts < hi)
    is_kernel = tr.cat_mask(KERNEL)
    gs = g.nonzero()[0]
    busy = {}
    for stream in sorted(set(tr.stream[gs].tolist())):
        idx = gs[tr.stream[gs] == stream]
        busy[stream] = (M.union_length(tr.ts[idx], end[idx], lo, hi) / (hi - lo), idx)
    drawn = sorted(sorted(busy, key=lambda sid: -busy[sid][0])[:MAX_STREAMS])
    for stream in drawn:
        share, idx = busy[stream]
        kern, copy = idx[is_kernel[idx]], idx[~is_kernel[idx]]
        segs, res = _lane([("kernel", tr.ts[kern], end[kern]), ("copy", tr.ts[copy], end[copy])], lo, hi)
        lanes.append({"name": f"GPU stream {stream}", "kind": "gpu", "segments": segs, "busy": share,
                      "resolution": res})
    hidden = [busy[sid][0] for sid in busy if sid not in drawn]
    marks = []
    for n, f in enumerate(findings, 1):
        if len(marks) >= MAX_MARKED:
            break
        if not run.script or run.relpath(run.script) != f.path:
            continue
        iv = run.line_time(run.script, f.line)[0]
        segs, res = _lane([("mark", np.array([a for a, _ in iv]), np.array([b for _, b in iv]))], lo, hi)
        if segs:
            marks.append({"n": n, "rule": f.rule, "line": f.line, "segments": [(x, w) for x, w, _ in segs],
                          "resolution": res})
    coarse = min([ln["resolution"] for ln in lanes + marks], default=RESOLUTION)
    return {"step": int(st.num[k]), "ms": (hi - lo) / 1000, "lanes": lanes, "marks": marks,
            "ticks": _ticks((hi - lo) / 1000), "ranks": _rank_view(run, int(st.num[k])),
            # what was left out or drawn coarser, for the page to say so
            "hidden_streams": len(hidden), "hidden_busy": max(hidden, default=0.0),
            "coarse_ms": (hi - lo) / 1000 / coarse if coarse < RESOLUTION else None}


def _rank_view(run, num: int) -> dict | None:
    """A distributed run: every rank in step `num` on one clock -- its training thread and its
    collectives (the transfer, and the part spent waiting for a later rank). Each rank's clock
    is mapped onto rank 0's by the collectives' ends, which coincide on all ranks; the window
    runs from the first rank's start of the step to the end of the step's last collective (a
    GPU-bound rank runs its collectives well after its CPU step)."""
    x = run.cross_rank
    if x is None or not x.matched:
        return None
    ranks = run.ranks[:MAX_RANKS]
    end0 = ranks[0].comm.end[x.sel[0]]
    off = [float(np.median(rc.comm.end[x.sel[r]] - end0)) for r, rc in enumerate(ranks)]
    lo, hi = np.inf, -np.inf
    for r, rc in enumerate(ranks):
        j = np.flatnonzero(rc.steps.num == num)
        if not len(j):
            return None
        mine = rc.comm.step == num
        lo = min(lo, float(rc.steps.start[j[0]]) - off[r])
        hi = max(hi, float(rc.steps.end[j[0]]) - off[r], float(rc.comm.end[mine].max(initial=-np.inf)) - off[r])
    if not hi > lo:
        return None
    lanes = []
    for r, rc in enumerate(ranks):
        cpu = activity_spans(rc)
        segs, res = _lane([(k, cpu[k][0] - off[r], cpu[k][1] - off[r]) for k in CPU_KINDS], lo, hi)
        lanes.append({"name": f"rank {r} · training thread", "kind": "cpu",
                      "segments": _cpu_base(rc, lo + off[r], hi + off[r], lo, hi) + segs, "resolution": res})
        c, sel = rc.comm, x.sel[r]
        waited = c.start[sel] + x.waits[r]
        segs, res = _lane([("comm", c.start - off[r], c.end - off[r]),
                           ("comm_wait", c.start[sel] - off[r], waited - off[r])], lo, hi)
        lanes.append({"name": f"rank {r} · collectives", "kind": "comm", "segments": segs, "resolution": res,
                      "busy": M.union_length(c.start - off[r], c.end - off[r], lo, hi) / (hi - lo)})
    return {"step": num, "ms": (hi - lo) / 1000, "lanes": lanes, "ticks": _ticks((hi - lo) / 1000),
            "shown": len(ranks), "world": len(run.ranks)}


def _cpu_base(rc, a: float, b: float, lo: float, hi: float) -> list:
    """The 'other CPU' background of a training-thread lane: the rank's recorded steps within
    [a, b) on its own clock, drawn at [lo, hi)."""
    out = []
    for s, e in zip(rc.steps.start, rc.steps.end):
        s, e = max(s, a), min(e, b)
        if e > s:
            out.append(((s - a) / (b - a), (e - s) / (b - a), "other_cpu"))
    return out


def _ticks(ms: float) -> list[tuple[float, str]]:
    """Round time marks along the step: (fraction, label)."""
    if ms <= 0:
        return []
    raw = ms / 5
    mag = float(10 ** np.floor(np.log10(raw)))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    out, t = [], 0.0
    while t <= ms * 1.0001:
        out.append((float(t / ms), f"{t:g} ms"))
        t = round(t + step, 10)
    return out
