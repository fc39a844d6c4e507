"""Measures derived from a Trace: plain functions, no state.

Times are microseconds on the trace's clock unless a name says otherwise.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from .model import (
    CPU_OP,
    CUDA_DRIVER,
    CUDA_RUNTIME,
    GPU_CATEGORIES,
    GPU_MEMCPY,
    PYTHON_FUNCTION,
    USER_ANNOTATION,
    Trace,
)

_STEP = re.compile(r"ProfilerStep#(\d+)$")
DATALOADER_PREFIX = "enumerate(DataLoader)#"
ANCHOR = "trainprof#anchor"  # capture/child.py records one right after each prof.step()
# Runtime calls that block the calling thread until the GPU catches up.
SYNC_CALLS = frozenset({
    "cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize",
    "cudaStreamWaitEvent_sync", "cuStreamSynchronize", "cuCtxSynchronize", "cuEventSynchronize",
})
MEMCPY_CALLS = frozenset({"cudaMemcpy", "cudaMemcpyAsync", "cuMemcpyHtoD_v2", "cuMemcpyDtoH_v2",
                          "cuMemcpyAsync", "cuMemcpyHtoDAsync_v2", "cuMemcpyDtoHAsync_v2"})


@dataclass(frozen=True)
class Steps:
    num: np.ndarray  # int
    start: np.ndarray
    end: np.ndarray
    tid: int  # the thread that ran the training loop
    pid: int

    def __len__(self) -> int:
        return len(self.num)

    @property
    def window(self) -> tuple[float, float]:
        return float(self.start[0]), float(self.end[-1])

    @property
    def dur(self) -> np.ndarray:
        return self.end - self.start


def steps(trace: Trace, active: list[int] | None = None) -> Steps:
    """The ProfilerStep#N spans; `active` (from run.json) names the recorded ones."""
    m = trace.cat_mask(USER_ANNOTATION) & trace.name_mask(lambda n: _STEP.match(n) is not None)
    idx = np.flatnonzero(m)
    nums = np.array([int(_STEP.match(trace.name(i)).group(1)) for i in idx], dtype=np.int64)
    if active:
        keep = np.isin(nums, active)
    elif len(idx) > 1:
        # Without run.json: drop a trailing partial step (the profiler opens one more
        # span as it stops) -- one far shorter than the others.
        keep = np.ones(len(idx), bool)
        d = trace.dur[idx]
        if d[-1] < 0.25 * np.median(d[:-1]):
            keep[-1] = False
    else:
        keep = np.ones(len(idx), bool)
    idx, nums = idx[keep], nums[keep]
    if len(idx) == 0:
        return Steps(nums, np.array([]), np.array([]), -1, -1)
    tids, counts = np.unique(trace.tid[idx], return_counts=True)
    tid = int(tids[np.argmax(counts)])
    sel = trace.tid[idx] == tid
    idx, nums = idx[sel], nums[sel]
    if len(idx) >= 3:
        # The first recorded step carries the profiler's own start-up (CUPTI buffers,
        # the Python tracer's first frames): seen 1.5x-4x its neighbours on CPU-bound steps.
        idx, nums = idx[1:], nums[1:]
    start, end = trace.ts[idx].copy(), trace.end[idx]
    # Some torch versions (seen: 2.5.1) start ProfilerStep#N late, at the step's first
    # profiled op after the Python work before it. trainprof's capture records an anchor
    # span right after each prof.step(): where one falls before the span, the step began there.
    anchors = np.sort(trace.ts[trace.name_mask(lambda n: n == ANCHOR) & (trace.tid == tid)])
    every = np.flatnonzero(m & (trace.tid == tid))  # all ProfilerStep spans of that thread
    for k in range(len(idx)):
        before = trace.end[every][trace.ts[every] < start[k]]
        prev_end = before.max() if len(before) else -np.inf
        j = int(np.searchsorted(anchors, start[k], side="right")) - 1
        if j >= 0 and anchors[j] >= prev_end:
            start[k] = anchors[j]
    return Steps(nums, start, end, tid, int(trace.pid[idx[0]]))


def union_length(start: np.ndarray, end: np.ndarray, lo: float = -np.inf, hi: float = np.inf) -> float:
    """Total length of the union of [start, end) intervals, clipped to [lo, hi)."""
    s, e = merge(np.clip(start, lo, hi), np.clip(end, lo, hi))
    return float(np.sum(e - s))


def merge(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of intervals as sorted disjoint intervals."""
    if len(start) == 0:
        return start, end
    order = np.argsort(start, kind="stable")
    s, e = start[order], np.maximum.accumulate(end[order])
    new = np.empty(len(s), bool)
    new[0] = True
    new[1:] = s[1:] > e[:-1]
    run_id = np.cumsum(new) - 1
    rs = s[new]
    re_ = np.zeros(run_id[-1] + 1)
    np.maximum.at(re_, run_id, e)
    return rs, re_


def within(t: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which instants t fall inside the intervals [starts, ends) (sorted, not overlapping)."""
    t = np.asarray(t, dtype=np.float64)
    if not len(starts) or not len(t):
        return np.zeros(len(t), bool)
    k = np.searchsorted(starts, t, side="right") - 1
    return (k >= 0) & (t < np.asarray(ends)[np.clip(k, 0, None)])


def in_window(trace: Trace, lo: float, hi: float) -> np.ndarray:
    return (trace.ts < hi) & (trace.end > lo)


def gpu_mask(trace: Trace) -> np.ndarray:
    return trace.cat_mask(*GPU_CATEGORIES)


def gpu_busy(trace: Trace, lo: float, hi: float) -> float:
    """Time in [lo, hi) during which any GPU stream was running something."""
    m = gpu_mask(trace) & in_window(trace, lo, hi)
    return union_length(trace.ts[m], trace.end[m], lo, hi)


def on_thread(trace: Trace, st: Steps) -> np.ndarray:
    return (trace.tid == st.tid) & (trace.pid == st.pid)


def runtime_mask(trace: Trace) -> np.ndarray:
    return trace.cat_mask(CUDA_RUNTIME, CUDA_DRIVER)


def sync_calls(trace: Trace) -> np.ndarray:
    return runtime_mask(trace) & trace.name_mask(lambda n: n in SYNC_CALLS)


def memcpy_calls(trace: Trace) -> np.ndarray:
    return runtime_mask(trace) & trace.name_mask(lambda n: n in MEMCPY_CALLS)


def copy_kind(name: str) -> tuple[str, str] | None:
    """'Memcpy HtoD (Pageable -> Device)' -> ('HtoD', 'pageable')."""
    m = re.match(r"Memcpy (\w+) \((\w+) -> (\w+)\)", name)
    if not m:
        return None
    direction, src, dst = m.groups()
    host = src if direction.startswith("H") else dst
    return direction, host.lower()


@functools.lru_cache(maxsize=4)  # read by the replay, the sync classifier and several rules
def gpu_by_correlation(trace: Trace) -> dict[int, list[int]]:
    """correlation id -> indices of the GPU events it launched."""
    idx = np.flatnonzero(gpu_mask(trace) & (trace.corr >= 0))
    out: dict[int, list[int]] = {}
    for i, c in zip(idx.tolist(), trace.corr[idx].tolist()):
        out.setdefault(c, []).append(i)
    return out


def dataloader_spans(trace: Trace, st: Steps) -> np.ndarray:
    """The training thread's waits on a DataLoader within the recorded steps."""
    m = trace.cat_mask(USER_ANNOTATION) & trace.name_mask(lambda n: n.startswith(DATALOADER_PREFIX))
    lo, hi = st.window
    return np.flatnonzero(m & on_thread(trace, st) & (trace.ts >= lo) & (trace.ts < hi))


def top_level(trace: Trace, mask: np.ndarray) -> np.ndarray:
    """Indices in mask not nested inside another event of mask on the same thread."""
    idx = np.flatnonzero(mask)
    keep = []
    end_by_thread: dict = {}
    for i in idx.tolist():
        key = (trace.pid[i], trace.tid[i])
        if trace.ts[i] >= end_by_thread.get(key, -np.inf):
            keep.append(i)
            end_by_thread[key] = trace.end[i]
    return np.asarray(keep, dtype=np.int64)


def cpu_ops(trace: Trace) -> np.ndarray:
    return trace.cat_mask(CPU_OP)


def python_frames(trace: Trace) -> np.ndarray:
    return trace.cat_mask(PYTHON_FUNCTION)


def is_pageable_h2d(trace: Trace, gpu_idx: list[int]) -> bool:
    for g in gpu_idx:
        if trace.cat(g) == GPU_MEMCPY:
            k = copy_kind(trace.name(g))
            if k and k[0] == "HtoD" and k[1] == "pageable":
                return True
    return False


_WAITS = ("acquire", "wait", "sleep", "select", "poll", "join", "Condition")


def background_python(trace: Trace, st: Steps, hint: str) -> tuple[np.ndarray, np.ndarray]:
    """Merged intervals in the window when a background thread of this process whose
    Python frames mention `hint` (e.g. "tensorboard") ran Python code -- its innermost
    frames, less lock waits. Under the GIL the training thread stalls meanwhile."""
    lo, hi = st.window
    py = trace.cat_mask(PYTHON_FUNCTION) & (trace.pid == st.pid) & (trace.tid != st.tid)
    py &= (trace.end > lo) & (trace.ts < hi)
    tids = {int(t) for t in np.unique(trace.tid[py & trace.name_mask(lambda n: hint in n)])}
    if not tids:
        return np.array([]), np.array([])
    idx = np.flatnonzero(py & np.isin(trace.tid, list(tids)))
    # Its frames that hold no wait (a lock, a queue, a sleep) ran all along: their own bytecode
    # holds the GIL as much as their callees do (a CRC computed in Python is one frame calling
    # many tiny ones). A frame around a wait (the thread's loop) is left to its inner frames.
    busy = []
    for t in tids:
        k = idx[trace.tid[idx] == t]
        k = k[np.argsort(trace.ts[k], kind="stable")]
        waits = np.array([any(w in trace.name(i) for w in _WAITS) for i in k.tolist()], bool)
        ws = trace.ts[k[waits]]
        j = np.searchsorted(ws, trace.ts[k], side="left")
        holds = (j < len(ws)) & (ws[np.minimum(j, max(len(ws) - 1, 0))] < trace.end[k]) if len(ws) else np.zeros(len(k), bool)
        busy.append(k[~holds & ~waits])
    busy = np.concatenate(busy) if busy else np.zeros(0, np.int64)
    if not len(busy):
        return np.array([]), np.array([])
    return merge(np.clip(trace.ts[busy], lo, hi), np.clip(trace.end[busy], lo, hi))


def outside(trace: Trace, st: Steps, idx: np.ndarray) -> list[tuple[float, float]]:
    """The recorded steps' time outside the events idx (their union), as intervals."""
    s, e = merge(trace.ts[idx], trace.end[idx]) if len(idx) else (np.zeros(0), np.zeros(0))
    out = []
    for a, b in zip(st.start.tolist(), st.end.tolist()):
        t = a
        for x, y in zip(s.tolist(), e.tolist()):
            if x >= b:
                break
            if y > t:
                if x > t:
                    out.append((t, x))
                t = y
        if t < b:
            out.append((t, b))
    return out
