"""One representative recorded step, laid out for drawing: the training thread by what
it does, each GPU stream's busy time, and the spans of the findings' lines.

Positions are fractions of the step (0..1), merged below a pixel's worth so that a
step of 100k kernels still draws as a few thousand rectangles.
"""

from __future__ import annotations

import numpy as np

from . import measures as M
from .breakdown import PARTS, activity_spans
from .model import KERNEL

CPU_KINDS = PARTS[:-1]  # drawn over "other CPU", last on top
RESOLUTION = 1500  # rectangles narrower than 1/RESOLUTION of the step merge with their neighbours
MAX_MARKED = 6  # findings marked under the timeline


def _segments(s: np.ndarray, e: np.ndarray, lo: float, hi: float) -> list[tuple[float, float]]:
    """Intervals clipped to [lo, hi), merged across gaps under a pixel, as (x, width) fractions."""
    if not len(s):
        return []
    s, e = np.clip(s, lo, hi), np.clip(e, lo, hi)
    keep = e > s
    s, e = M.merge(s[keep], e[keep])
    if not len(s):
        return []
    span = hi - lo
    gap = span / RESOLUTION
    out = [[s[0], e[0]]]
    for a, b in zip(s[1:].tolist(), e[1:].tolist()):
        if a - out[-1][1] < gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [((a - lo) / span, max((b - a) / span, 1 / RESOLUTION / 2)) for a, b in out]


def step_view(ctx, findings) -> dict | None:
    """The lanes of the median-length recorded step, and where each top finding's line ran."""
    tr, st = ctx.trace, ctx.steps
    if not len(st):
        return None
    k = int(np.argsort(st.dur)[len(st) // 2])
    lo, hi = float(st.start[k]), float(st.end[k])
    if hi <= lo:
        return None
    cpu = activity_spans(ctx)

    def spans(mask):
        idx = np.flatnonzero(mask)
        return tr.ts[idx], tr.end[idx]

    lanes = [{"name": "training thread", "kind": "cpu",
              "segments": [(0.0, 1.0, "other_cpu")] + [(x, w, kind) for kind in CPU_KINDS
                                                       for x, w in _segments(*cpu[kind], lo, hi)]}]
    g = M.gpu_mask(tr) & (tr.end > lo) & (tr.ts < hi)
    for stream in sorted(set(tr.stream[g].tolist())):
        m = g & (tr.stream == stream)
        kernels = m & tr.cat_mask(KERNEL)
        copies = m & ~tr.cat_mask(KERNEL)
        segs = [(x, w, "kernel") for x, w in _segments(*spans(kernels), lo, hi)]
        segs += [(x, w, "copy") for x, w in _segments(*spans(copies), lo, hi)]
        busy = M.union_length(tr.ts[m], tr.end[m], lo, hi)
        lanes.append({"name": f"GPU stream {stream}", "kind": "gpu", "segments": segs,
                      "busy": busy / (hi - lo)})
    marks = []
    for n, f in enumerate(findings, 1):
        if len(marks) >= MAX_MARKED:
            break
        if not ctx.script or ctx.relpath(ctx.script) != f.path:
            continue
        iv = ctx.line_time(ctx.script, f.line)[0]
        segs = _segments(np.array([a for a, _ in iv]), np.array([b for _, b in iv]), lo, hi)
        if segs:
            marks.append({"n": n, "rule": f.rule, "line": f.line, "segments": segs})
    return {"step": int(st.num[k]), "ms": (hi - lo) / 1000, "lanes": lanes, "marks": marks,
            "ticks": _ticks((hi - lo) / 1000)}


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
