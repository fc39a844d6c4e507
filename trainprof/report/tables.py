"""The report's two tables, each a top N so that the page stays small whatever the run:

- the user's lines that cost the most per step, in unprofiled ms as the step time is
  (Run.cpu_ms: the profiler's cost taken out as the calibration measured it);
- the ops that cost the most per step: GPU kernels, copies and memsets by their device time,
  and the CPU's ops and runtime calls by their self time (less the ops and calls they made),
  as the profiler recorded them -- the figures TensorBoard's operator view shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..trace import measures as M
from ..trace.model import CPU_OP, CUDA_DRIVER, CUDA_RUNTIME, GPU_MEMCPY, GPU_MEMSET, KERNEL

if TYPE_CHECKING:
    from ..run import Run

MAX_ROWS = 15  # rows of each table (analysis.json keeps as many)
KINDS = {KERNEL: "kernel", GPU_MEMCPY: "copy", GPU_MEMSET: "memset", CPU_OP: "op",
         CUDA_RUNTIME: "runtime", CUDA_DRIVER: "driver"}


def line_rows(run: Run, n: int = MAX_ROWS) -> list[dict]:
    """The n lines of the user's code that held the training thread longest per step (as the
    innermost line of the user's code: time in a framework goes to the line that called it)."""
    lt = run.lines
    if lt is None or not run.n_steps:
        return []
    step_ms = run.base_step_us / 1000
    rows = [{"path": k[0], "line": k[1], "ms": run.cpu_ms(iv), "profiled_ms": lt.per_step[k] / 1000}
            for k, iv in lt.by_line.items() if k is not None]
    rows = sorted(rows, key=lambda r: (-r["ms"], r["path"], r["line"]))[:n]
    for r in rows:
        r["share"] = r["ms"] / step_ms if step_ms > 0 else 0.0
    return rows


def self_times(tr, idx: np.ndarray) -> np.ndarray:
    """Each event's duration less that of the events of idx directly inside it on its thread
    (a child that outlasts its parent counts up to the parent's end)."""
    if not len(idx):
        return np.zeros(0)
    perm = np.lexsort((-tr.dur[idx], tr.ts[idx], tr.tid[idx], tr.pid[idx]))  # by thread, then time, outer first
    order = idx[perm]
    ts, end = tr.ts[order], np.maximum(tr.end[order], tr.ts[order])
    pid, tid = tr.pid[order], tr.tid[order]
    cuts = np.flatnonzero((pid[1:] != pid[:-1]) | (tid[1:] != tid[:-1])) + 1
    parent = np.full(len(order), -1)
    for a, b in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(order)].tolist()):  # each thread
        p = _parents(ts[a:b], end[a:b])
        parent[a:b] = np.where(p >= 0, p + a, -1)
    has = np.flatnonzero(parent >= 0)
    inside = np.maximum(np.minimum(end[has], end[parent[has]]) - ts[has], 0.0)
    inner = np.bincount(parent[has], weights=inside, minlength=len(order))
    out = np.empty(len(order))
    out[perm] = np.maximum(tr.dur[order] - inner, 0.0)  # back in idx's order
    return out


def _parents(ts: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Each event's innermost enclosing event (-1: none), for one thread's events sorted by start,
    outer first. Its depth is the number of earlier events still open when it starts; its parent,
    the last earlier event one level up (vectorized: a trace has millions of ops)."""
    k = np.arange(len(ts))
    ended = np.searchsorted(np.sort(end), ts, side="right")
    if (end == ts).any():  # instants sort last among equal starts: those from k on are not earlier
        zero = np.r_[0, np.cumsum(end == ts)]
        ended -= zero[np.searchsorted(ts, ts, side="right")] - zero[k]
    depth = k - ended
    parent = np.full(len(ts), -1)
    by_depth = np.argsort(depth, kind="stable")  # by depth, then position
    bounds = np.searchsorted(depth[by_depth], np.arange(depth.max() + 2))
    for d in range(1, depth.max() + 1):
        up, here = by_depth[bounds[d - 1]:bounds[d]], by_depth[bounds[d]:bounds[d + 1]]
        j = np.searchsorted(up, here) - 1
        parent[here] = np.where(j >= 0, up[np.maximum(j, 0)], -1)
    return parent


def _top(run: Run, idx: np.ndarray, us: np.ndarray, n: int) -> list[dict]:
    """Events grouped by name: the n names with the most time per step."""
    tr, steps = run.trace, max(run.n_steps, 1)
    if not len(idx):
        return []
    ids = tr.name_id[idx]
    total = np.bincount(ids, weights=us, minlength=len(tr.names))
    count = np.bincount(ids, minlength=len(tr.names))
    rows = []
    seen = np.flatnonzero(count)
    for j in seen[np.argsort(-total[seen], kind="stable")][:n].tolist():
        first = int(idx[np.argmax(ids == j)])  # its kind: its first event's category
        rows.append({"name": tr.names[j], "kind": KINDS.get(tr.cat(first), "op"),
                     "ms": float(total[j]) / steps / 1000, "count": float(count[j]) / steps,
                     "avg_us": float(total[j]) / int(count[j])})
    return rows


def op_rows(run: Run, n: int = MAX_ROWS) -> dict:
    """{"gpu": [...], "cpu": [...]}: per name, time and calls per recorded step of the events
    that started in the recorded steps (GPU: device time; CPU: self time, any thread)."""
    tr, st = run.trace, run.steps
    if not len(st):
        return {"gpu": [], "cpu": []}
    lo, hi = st.window
    inwin = (tr.ts >= lo) & (tr.ts < hi)
    g = np.flatnonzero(M.gpu_mask(tr) & inwin)
    c = np.flatnonzero(tr.cat_mask(CPU_OP, CUDA_RUNTIME, CUDA_DRIVER) & inwin)
    return {"gpu": _top(run, g, tr.dur[g], n), "cpu": _top(run, c, self_times(tr, c), n)}
