"""Where a step's time goes on the training thread, and how busy the GPU is: what every
output shows of a run, computed once by prepare.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..trace import measures as M

if TYPE_CHECKING:
    from ..run import Run

PARTS = ("data_loader", "sync_wait", "h2d_copies", "logging", "other_cpu")
LABELS = {"data_loader": "data loader", "sync_wait": "sync wait", "h2d_copies": "H2D copies",
          "logging": "logging", "other_cpu": "other CPU"}


def activity_spans(run: Run) -> dict:
    """The training thread's (start, end) arrays by activity, for PARTS but other_cpu:
    loader waits, sync calls, copy calls, time on logging lines."""
    tr, st, main = run.trace, run.steps, run.main

    def spans(idx):
        return tr.ts[idx], tr.end[idx]

    log_iv = [iv for line in sorted(run.logging_lines) for iv in run.line_time(run.script, line)[0]] \
        if run.script else []
    return {
        "data_loader": spans(M.dataloader_spans(tr, st)),
        "sync_wait": spans(np.flatnonzero(M.sync_calls(tr) & main)),
        "h2d_copies": spans(np.flatnonzero(M.memcpy_calls(tr) & main)),
        "logging": (np.array([a for a, _ in log_iv]), np.array([b for _, b in log_iv])),
    }


def breakdown(run: Run) -> dict:
    """Disjoint parts of the step (per-step ms, profiled), by priority: a moment spent
    waiting on the loader is loader time even if a logging line is on the stack."""
    tr, st = run.trace, run.steps
    lo, hi = st.window
    n = max(len(st), 1)
    act = activity_spans(run)
    groups = [act[k] for k in PARTS[:-1]]
    parts, covered = {}, 0.0
    acc_s, acc_e = np.array([]), np.array([])
    for name, (s, e) in zip(PARTS[:-1], groups):
        acc_s, acc_e = np.concatenate([acc_s, s]), np.concatenate([acc_e, e])
        u = M.union_length(acc_s, acc_e, lo, hi)
        parts[name] = (u - covered) / n / 1000
        covered = u
    total = (hi - lo) / n / 1000
    parts["other_cpu"] = max(0.0, total - covered / n / 1000)
    busy = M.gpu_busy(tr, lo, hi) if tr.has_cuda else 0.0
    return {
        "step_ms": total,
        "gpu_busy": busy / (hi - lo) if hi > lo and tr.has_cuda else None,
        "parts": parts,
    }
