"""The recorded window's launches joined to the GPU work they started, by correlation id.

Read by the replay's timeline and by the rules that ask which kernels a line launched
(fused optimizers, launch-bound steps, fp32 matmuls): computed once per run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import measures as M
from .model import Trace


@dataclass(frozen=True, eq=False)
class Launches:
    calls: np.ndarray  # trace indices of the runtime calls in the window that launched GPU work, in trace order
    gpu: np.ndarray  # trace indices of the GPU events in the window's reach, in trace order
    pair_call: np.ndarray  # per (launch, GPU event) pair: the launch's position in `calls`
    pair_gpu: np.ndarray  # ... and the GPU event's trace index (by correlation id, then trace order)
    by_call: dict  # launch trace index -> [its GPU events' trace indices], in `calls` order
    cost_us: float  # median CPU time of one kernel launch on the training thread (5 µs if none)

    def __len__(self) -> int:
        return len(self.calls)

    def gpu_of(self, call: int) -> list[int]:
        return self.by_call.get(call, [])

    def launched(self) -> list[int]:
        """Every GPU event a launch of the window started, in launch order."""
        return [g for gs in self.by_call.values() for g in gs]


def launches(trace: Trace, st: M.Steps) -> Launches:
    lo, hi = st.window
    gpu = M.gpu_mask(trace)
    rt = M.runtime_mask(trace) & (trace.pid == st.pid) & (trace.ts >= lo) & (trace.ts < hi)
    cand = np.flatnonzero(rt & (trace.corr >= 0))
    calls = cand[np.isin(trace.corr[cand], trace.corr[gpu & (trace.corr >= 0)])]
    # GPU work of the window's launches that ran in the window's reach (a clock-damaged
    # trace can put a launch's kernel anywhere)
    gpu_idx = np.flatnonzero(gpu & (trace.ts < hi + 1e9) & (trace.end > lo))
    # Each launch's GPU work, joined by correlation id (in trace order within a launch)
    gc = gpu_idx[trace.corr[gpu_idx] >= 0]
    gc = gc[np.lexsort((gc, trace.corr[gc]))]
    gcorr = trace.corr[gc]
    first = np.searchsorted(gcorr, trace.corr[calls], side="left")
    count = np.searchsorted(gcorr, trace.corr[calls], side="right") - first
    ends = np.cumsum(count)
    pair_g = gc[np.repeat(first - (ends - count), count) + np.arange(int(ends[-1]) if len(ends) else 0)]
    pair_l = np.repeat(np.arange(len(calls)), count)
    gl, bounds = pair_g.tolist(), [0, *ends.tolist()]
    by_call = {i: gl[bounds[k]:bounds[k + 1]] for k, i in enumerate(calls.tolist())}
    main = M.on_thread(trace, st) & M.in_window(trace, lo, hi)
    m = M.runtime_mask(trace) & trace.name_mask(lambda n: "LaunchKernel" in n) & main
    cost = float(np.median(trace.dur[m])) if m.any() else 5.0
    return Launches(calls, gpu_idx, pair_l, pair_g, by_call, cost)
