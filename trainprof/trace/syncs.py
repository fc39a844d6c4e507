"""The training thread's syncs: each with the copy it waits for and the data-dependent-shape
op it sits in, and the time they block per step, by the script line that ran them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .measures import Steps, copy_kind, gpu_by_correlation, memcpy_calls, on_thread, sync_calls, top_level
from .model import CPU_OP, GPU_MEMCPY, Trace


@dataclass(frozen=True)
class SyncEvent:
    idx: int  # the sync call (trace index)
    kind: str  # "d2h" (a value read back), "h2d" (a blocking upload), "explicit" (no copy before it)
    copy_call: int | None  # the memcpy call it waits for, if any
    copy_gpu: tuple[int, ...]  # that copy's GPU events
    # The data-dependent-shape op (aten::nonzero, unique, ...) it happened in, if any:
    # its top-level op on the thread (e.g. the aten::index of `x[mask]`)
    shape_op: int | None = None


# Ops whose output size is read back from the GPU (the sync inside them is theirs)
SHAPE_OPS = frozenset({"aten::nonzero", "aten::unique", "aten::_unique", "aten::_unique2", "aten::unique_dim",
                       "aten::unique_consecutive", "aten::masked_select", "aten::argwhere",
                       "aten::repeat_interleave", "aten::nonzero_numpy"})


def _shape_ops(trace: Trace, thread: np.ndarray, syncs: np.ndarray) -> dict[int, int]:
    """sync index -> the top-level CPU op around the shape op that holds it."""
    shape = np.flatnonzero(thread & trace.cat_mask(CPU_OP) & trace.name_mask(lambda n: n in SHAPE_OPS))
    if not len(shape) or not len(syncs):
        return {}
    tops = top_level(trace, thread & trace.cat_mask(CPU_OP))
    out = {}
    for s in syncs.tolist():
        k = int(np.searchsorted(trace.ts[shape], trace.ts[s], side="right")) - 1
        # the latest-starting shape op that began before the sync and still runs
        while k >= 0 and trace.end[shape[k]] < trace.end[s]:
            k -= 1
        if k < 0 or trace.ts[s] - trace.ts[shape[k]] > 1e6:
            continue
        j = int(np.searchsorted(trace.ts[tops], trace.ts[shape[k]], side="right")) - 1
        out[s] = int(tops[j]) if j >= 0 and trace.end[tops[j]] >= trace.end[shape[k]] else int(shape[k])
    return out


def classify_syncs(trace: Trace, st: Steps) -> list[SyncEvent]:
    """Each sync on the training thread, with the copy (if any) it waits for: PyTorch
    issues cudaMemcpyAsync then cudaStreamSynchronize for .item()/.cpu() and for
    .to(device) without non_blocking."""
    lo, hi = st.window
    thread = on_thread(trace, st) & (trace.ts >= lo) & (trace.ts < hi)
    syncs = np.flatnonzero(sync_calls(trace) & thread)
    copies = np.flatnonzero(memcpy_calls(trace) & thread)
    gpu_of = gpu_by_correlation(trace)
    shape_of = _shape_ops(trace, thread, syncs)
    out = []
    for s in syncs.tolist():
        k = int(np.searchsorted(trace.ts[copies], trace.ts[s])) - 1
        kind, call, gpu = "explicit", None, ()
        if k >= 0:
            c = int(copies[k])
            prev_sync = syncs[(syncs < s) & (trace.ts[syncs] >= trace.ts[c])]
            if trace.ts[s] - trace.end[c] < 200.0 and not len(prev_sync):
                call, gpu = c, tuple(gpu_of.get(int(trace.corr[c]), ()))
                kinds = [copy_kind(trace.name(g)) for g in gpu if trace.cat(g) == GPU_MEMCPY]
                direction = kinds[0][0] if kinds and kinds[0] else "DtoH"
                kind = "h2d" if direction == "HtoD" else "d2h"
        out.append(SyncEvent(s, kind, call, gpu, shape_of.get(s)))
    return out


@dataclass(frozen=True)
class SyncWaits:
    """The syncs of the recorded steps, and their waits by script line (None: unknown):
    line -> (sync events there, ms blocked per step, the GPU copies they waited for)."""

    events: list[SyncEvent]
    value_reads: dict  # the device->host reads and explicit syncs, less those inside a shape op
    shape_ops: dict  # the syncs inside data-dependent-shape ops (nonzero, unique...)


def sync_waits(trace: Trace, st: Steps, line_of: Callable[[int], int | None]) -> SyncWaits:
    """line_of: the script line running when a trace event started (the run's line attribution)."""
    events = classify_syncs(trace, st)
    n = len(st)

    def waits(keep) -> dict:
        picked = [s for s in events if s.kind in ("d2h", "explicit") and keep(s)]
        ev_of = {s.idx: s for s in picked}
        by_line: dict = {}
        for s in picked:
            by_line.setdefault(line_of(s.idx), []).append(s.idx)
        out = {}
        for line, idxs in by_line.items():
            blocked = sum(float(trace.dur[i]) for i in idxs) / n / 1000
            out[line] = (idxs, blocked, [g for i in idxs for g in ev_of[i].copy_gpu])
        return out

    return SyncWaits(events, waits(lambda s: s.shape_op is None), waits(lambda s: s.shape_op is not None))
