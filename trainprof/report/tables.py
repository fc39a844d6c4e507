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
    """Each event's duration less that of the events of idx directly inside it on its thread."""
    if not len(idx):
        return np.zeros(0)
    perm = np.lexsort((-tr.dur[idx], tr.ts[idx], tr.tid[idx], tr.pid[idx]))  # by thread, then time, outer first
    order = idx[perm]
    ts, end, dur = tr.ts[order].tolist(), tr.end[order].tolist(), tr.dur[order].tolist()
    thread = (tr.pid[order] * 1_000_003 + tr.tid[order]).tolist()
    inner = [0.0] * len(order)
    stack: list[int] = []  # positions of the open events, innermost last
    for k in range(len(order)):
        if k and thread[k] != thread[k - 1]:
            stack.clear()
        while stack and end[stack[-1]] <= ts[k]:
            stack.pop()
        if stack:
            p = stack[-1]
            inner[p] += min(end[k], end[p]) - ts[k]
        stack.append(k)
    own = np.maximum(np.asarray(dur) - np.asarray(inner), 0.0)
    out = np.empty(len(order))
    out[perm] = own  # back in idx's order
    return out


def _top(run: Run, idx: np.ndarray, us: np.ndarray, n: int) -> list[dict]:
    """Events grouped by name: the n names with the most time per step."""
    tr, steps = run.trace, max(run.n_steps, 1)
    if not len(idx):
        return []
    names, inv = np.unique(tr.name_id[idx], return_inverse=True)
    total = np.bincount(inv, weights=us, minlength=len(names))
    count = np.bincount(inv, minlength=len(names))
    first = np.full(len(names), len(idx))
    np.minimum.at(first, inv, np.arange(len(idx)))
    rows = []
    for j in np.argsort(-total, kind="stable")[:n].tolist():
        rows.append({"name": tr.names[int(names[j])], "kind": KINDS.get(tr.cat(int(idx[first[j]])), "op"),
                     "ms": float(total[j]) / steps / 1000, "count": float(count[j]) / steps,
                     "avg_us": float(total[j]) / max(int(count[j]), 1)})
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
