"""The recorded window as the replay reads it: the CPU thread's events (launches and
syncs, in time order), the GPU work each launch started with its duration, stream and
launch latency, the GPU work queued before the window, and the profiler's recorded
events (their cost is taken out by calibration.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..trace import measures as M
from ..trace.launches import Launches
from ..trace.launches import launches as launch_join
from ..trace.model import Trace
from .intervals import Removal, Warp

LAUNCH, BLOCK = 0, 1
# A traced Python frame's profiler cost relative to an op's (calibration.py: OP_US)
PY_WEIGHT = 0.22
MIN_KEEP = 0.1  # a CPU gap keeps at least this share of its profiled length
BLOCKED_LAUNCH_US = 200.0  # a launch call this long waited for room in the GPU's queue


@dataclass(frozen=True, eq=False)
class Timeline:
    lo: float
    hi: float
    n_steps: int
    ev_t: np.ndarray  # event time (launch ts, or sync start)
    ev_kind: np.ndarray  # LAUNCH / BLOCK
    ev_idx: np.ndarray  # trace index of the launch or sync call
    ev_end: np.ndarray  # sync end (for BLOCK)
    launch_gpu: dict  # launch trace index -> [gpu trace indices]
    g_dur: dict  # gpu trace index -> duration
    g_stream: dict  # gpu trace index -> stream
    g_lat: dict  # gpu trace index -> launch-to-ready latency
    pre: list  # GPU work issued before the window: (start, dur, stream)
    gpu_end: float  # last GPU end in the measured window
    ov_t: np.ndarray  # start times (sorted) of the CPU events the profiler recorded on the issuing threads
    ov_w: np.ndarray  # their weights (op/runtime 1, Python frame PY_WEIGHT)
    # Launch calls that blocked because the GPU's queue was full (the CPU ran far ahead
    # of a busy GPU): waiting, not work. The replay lets the CPU run ahead instead.
    blocked: tuple = ()
    # The launched GPU work as arrays, in launch order: (event position, gpu trace index,
    # latency, duration, stream), read by every replay. build_timeline has them at hand;
    # otherwise (a timeline built by hand) they are derived from the dicts above.
    kernels: tuple | None = None

    def __post_init__(self):
        if self.kernels is None:
            object.__setattr__(self, "kernels", self._kernels_from_dicts())

    def recorded_weight(self, a: float, b: float) -> float:
        """Profiler-overhead units recorded on the issuing threads in [a, b)."""
        i, j = np.searchsorted(self.ov_t, [a, b])
        return float(self.ov_w[i:j].sum())

    def _kernels_from_dicts(self) -> tuple[np.ndarray, ...]:
        rows = [(pos, g, self.g_lat.get(g, 0.0), self.g_dur[g], self.g_stream[g])
                for pos, (k, i) in enumerate(zip(self.ev_kind.tolist(), self.ev_idx.tolist()))
                if k == LAUNCH for g in self.launch_gpu[i]]
        if not rows:
            return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0, np.int64))
        pos, g, lat, dur, stream = zip(*rows)
        return (np.array(pos, np.int64), np.array(g, np.int64), np.array(lat, np.float64),
                np.array(dur, np.float64), np.array(stream, np.int64))

    @cached_property
    def blocked_removed(self) -> Removal:
        return Removal(self.blocked)

    def unprofiled(self, a: float, b: float, cal: tuple[float, float], warp: Warp | None = None) -> float:
        """CPU time [a, b) would take without the profiler (cal: per-event cost, scale)."""
        if warp is not None:
            return (warp(b) - warp(a)) * cal[1]
        raw = b - a
        return max(raw - cal[0] * self.recorded_weight(a, b), MIN_KEEP * raw) * cal[1]



def build_timeline(trace: Trace, st: M.Steps, launches: Launches | None = None) -> Timeline:
    """The recorded window as the replay reads it (launches: the window's launch join, if at hand)."""
    lo, hi = st.window
    win = M.in_window(trace, lo, hi)
    gpu = M.gpu_mask(trace)
    lk = launches if launches is not None else launch_join(trace, st)
    launches, gpu_idx, pair_l, pair_g, launch_gpu = lk.calls, lk.gpu, lk.pair_call, lk.pair_gpu, lk.by_call
    syncs = np.flatnonzero(M.sync_calls(trace) & M.on_thread(trace, st) & (trace.ts >= lo) & (trace.ts < hi))

    g_ts, g_end, g_s = trace.ts[gpu_idx], trace.end[gpu_idx], trace.stream[gpu_idx]
    g_dur = dict(zip(gpu_idx.tolist(), trace.dur[gpu_idx].tolist()))
    g_stream = dict(zip(gpu_idx.tolist(), g_s.tolist()))
    # Launch latency: seen where a kernel was not queued behind another on its stream
    # (the stream idle when the launch came); a kernel launched onto a busy stream waited.
    at = np.full(len(gpu_idx), np.nan)  # launch time of each GPU event (NaN: not launched here)
    at[np.searchsorted(gpu_idx, pair_g)] = trace.ts[launches][pair_l]
    o = np.lexsort((gpu_idx, g_ts, g_s))  # per stream, by start
    prev_end = np.full(len(gpu_idx), -np.inf)
    so = g_s[o]
    cuts = [0, *(np.flatnonzero(np.diff(so)) + 1).tolist(), len(so)]
    for a, b in zip(cuts[:-1], cuts[1:]):
        prev_end[o[a + 1:b]] = np.maximum.accumulate(g_end[o[a:b - 1]])
    launched = ~np.isnan(at)
    lat = np.maximum(0.0, g_ts - at)
    idle = launched & (at >= prev_end)
    lat_med = float(np.median(lat[idle])) if idle.any() else 5.0
    lat = np.where(idle, lat, np.minimum(lat_med, lat))
    g_lat = dict(zip(gpu_idx[launched].tolist(), lat[launched].tolist()))
    by_ts = np.argsort(g_ts, kind="stable")
    pre_m = ~launched[by_ts] & (g_ts[by_ts] < hi)
    pre = list(zip(g_ts[by_ts][pre_m].tolist(), trace.dur[gpu_idx][by_ts][pre_m].tolist(), g_s[by_ts][pre_m].tolist()))

    ev_t = np.concatenate([trace.ts[launches], trace.ts[syncs]])
    kinds = np.concatenate([np.full(len(launches), LAUNCH), np.full(len(syncs), BLOCK)]).astype(np.int8)
    idxs = np.concatenate([launches, syncs]).astype(np.int64)
    ev_end = np.concatenate([trace.end[launches], trace.end[syncs]])
    o = np.argsort(ev_t, kind="stable")
    gm = gpu & win
    gpu_end = float(trace.end[gm].max()) if gm.any() else lo
    # Threads that issue the step's work: the training thread, and the autograd
    # threads that launch the backward (not the loader's pin-memory thread).
    tids = {st.tid} | set(trace.tid[launches].tolist())
    recorded = (trace.cat_mask(M.CPU_OP, M.CUDA_RUNTIME, M.PYTHON_FUNCTION) & (trace.pid == st.pid)
                & np.isin(trace.tid, list(tids)) & (trace.ts >= lo) & (trace.ts < hi))
    ri = np.flatnonzero(recorded)
    ri = ri[np.argsort(trace.ts[ri], kind="stable")]
    weight = np.where(trace.cat_mask(M.PYTHON_FUNCTION)[ri], PY_WEIGHT, 1.0)
    blocked = ()
    if len(launches):
        ld = trace.dur[launches]
        typical = float(np.median(ld))
        long = np.flatnonzero(ld > max(BLOCKED_LAUNCH_US, 20 * typical))
        blocked = tuple((float(trace.ts[launches[k]] + typical), float(trace.end[launches[k]])) for k in long.tolist())
    # The kernels' arrays, already at hand: in event order, each launch's work in trace order.
    pos_of = np.empty(len(o), np.int64)
    pos_of[o] = np.arange(len(o))
    k_pos = pos_of[pair_l]
    ko = np.argsort(k_pos, kind="stable")
    gi = np.searchsorted(gpu_idx, pair_g[ko])
    kernels = (k_pos[ko], pair_g[ko], np.where(launched[gi], lat[gi], 0.0), trace.dur[pair_g[ko]], g_s[gi])
    return Timeline(lo, hi, len(st), ev_t[o], kinds[o], idxs[o], ev_end[o], launch_gpu,
                    g_dur, g_stream, g_lat, pre, gpu_end, trace.ts[ri], weight, blocked, kernels)
