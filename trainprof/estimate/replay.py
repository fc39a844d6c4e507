"""What-if replay of the recorded steps.

The model: one CPU thread runs the training loop and issues GPU work; each GPU
stream runs its work in launch order, never before the launch (plus the launch
latency seen in this trace); a sync makes the CPU wait until the GPU has done
everything issued before it. A fix is a Change to those timelines -- CPU time
removed, syncs dropped, GPU work dropped or scaled, a floor from the data loader
-- and the new step time is read off the replay, so time that overlaps is
counted once and a fix that only moves the bottleneck gains what it really gains.

Replaying with no change reproduces the measured window (a self-check). The
profiler's own cost is then taken out in two parts: first per recorded event
(each op and runtime call OP_US, each traced Python frame PY_WEIGHT of that; the
costs bench/probe_overhead.py measures), so that a step of many tiny ops loses
more of its profiled time than a step of long ones; then, if the replay is still
slower than the unprofiled step, the rest of the CPU side is scaled uniformly
until it matches (the Python tracer slows some code far more than its frame count
says).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..trace import measures as M
from ..trace.model import Trace

LAUNCH, BLOCK = 0, 1
SYNC_OVERHEAD_US = 5.0  # CPU cost left of a sync call whose wait is replayed away
# Profiler cost per recorded op or runtime call, and of a traced Python frame relative
# to it. bench/probe_overhead.py measures ~3.8 us per op with its launch and ~0.43 us
# per Python call on the H100 host (torch 2.11), ~1 us and ~0.2 us on a 2-core CPU host
# (torch 2.13) -- from a shallow loop. Real training code records deeper stacks: the
# fixed runs of excessive_logging and checkpoint_every_step (sample_traces/) imply 4-8 us
# per unit against their unprofiled step times, hence 4 us (in-sample; see ESTIMATES.md).
OP_US = {"cuda": 4.0, "cpu": 2.0}
PY_WEIGHT = 0.22
MIN_KEEP = 0.1  # a CPU gap keeps at least this share of its profiled length
BLOCKED_LAUNCH_US = 200.0  # a launch call this long waited for room in the GPU's queue


@dataclass(frozen=True)
class Change:
    """A fix, as a change to the recorded timelines. Intervals are on the trace clock (µs)."""

    # Main-thread time deleted, (start, end), or shrunk to a share, (start, end, keep);
    # GPU work launched inside is dropped.
    remove_cpu: tuple[tuple[float, ...], ...] = ()
    drop_syncs: frozenset[int] = frozenset()  # sync events (trace indices) that no longer wait
    drop_gpu: frozenset[int] = frozenset()  # GPU events (trace indices) no longer run
    gpu_scale: tuple[tuple[int, float], ...] = ()  # GPU event -> duration factor
    floor_us: float = 0.0  # the step can be no faster than this per step (e.g. loader throughput)
    # Main-thread time shrunk to a share, (start, end, keep), with the GPU work issued
    # inside kept: launches made cheap (a CUDA graph replay issues them all at once)
    squeeze_cpu: tuple[tuple[float, float, float], ...] = ()

    def __or__(self, other: Change) -> Change:
        return Change(
            self.remove_cpu + other.remove_cpu,
            self.drop_syncs | other.drop_syncs,
            self.drop_gpu | other.drop_gpu,
            self.gpu_scale + other.gpu_scale,
            max(self.floor_us, other.floor_us),
            self.squeeze_cpu + other.squeeze_cpu,
        )

    @property
    def empty(self) -> bool:
        return not (self.remove_cpu or self.drop_syncs or self.drop_gpu or self.gpu_scale or self.floor_us
                    or self.squeeze_cpu)


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
    def blocked_removed(self) -> _Removed:
        return _Removed(self.blocked)

    def unprofiled(self, a: float, b: float, cal: tuple[float, float], warp=None) -> float:
        """CPU time [a, b) would take without the profiler (cal: per-event cost, scale)."""
        if warp is not None:
            return (warp(b) - warp(a)) * cal[1]
        raw = b - a
        return max(raw - cal[0] * self.recorded_weight(a, b), MIN_KEEP * raw) * cal[1]


@dataclass(frozen=True)
class Result:
    step_us: float
    gpu_busy_us: float  # per step, in the replayed schedule
    cpu_us: float  # per step: when the CPU thread finished issuing, over steps


def build_timeline(trace: Trace, st: M.Steps) -> Timeline:
    lo, hi = st.window
    win = M.in_window(trace, lo, hi)
    gpu = M.gpu_mask(trace)
    rt = M.runtime_mask(trace) & (trace.pid == st.pid) & (trace.ts >= lo) & (trace.ts < hi)
    cand = np.flatnonzero(rt & (trace.corr >= 0))
    launches = cand[np.isin(trace.corr[cand], trace.corr[gpu & (trace.corr >= 0)])]
    syncs = np.flatnonzero(M.sync_calls(trace) & M.on_thread(trace, st) & (trace.ts >= lo) & (trace.ts < hi))
    # GPU work of the window's launches that ran in the window's reach (a clock-damaged
    # trace can put a launch's kernel anywhere)
    gpu_idx = np.flatnonzero(gpu & (trace.ts < hi + 1e9) & (trace.end > lo))
    # Each launch's GPU work, joined by correlation id (in trace order within a launch)
    gc = gpu_idx[trace.corr[gpu_idx] >= 0]
    gc = gc[np.lexsort((gc, trace.corr[gc]))]
    gcorr = trace.corr[gc]
    first = np.searchsorted(gcorr, trace.corr[launches], side="left")
    count = np.searchsorted(gcorr, trace.corr[launches], side="right") - first
    ends = np.cumsum(count)
    pair_g = gc[np.repeat(first - (ends - count), count) + np.arange(int(ends[-1]) if len(ends) else 0)]
    pair_l = np.repeat(np.arange(len(launches)), count)  # position in `launches`
    gl, bounds = pair_g.tolist(), [0, *ends.tolist()]
    launch_gpu = {i: gl[bounds[k]:bounds[k + 1]] for k, i in enumerate(launches.tolist())}

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


class _Removed:
    """Removed CPU time: intervals (start, end) removed whole, or (start, end, keep)
    shrunk to `keep` of their length (a log line run every 100th step keeps 1/100).
    Where intervals overlap the larger removal wins, so a saving is counted once."""

    def __init__(self, intervals):
        pts = []
        for iv in intervals:
            a, b = float(iv[0]), float(iv[1])
            r = 1.0 - (float(iv[2]) if len(iv) > 2 else 0.0)
            if b > a and r > 0:
                pts.append((a, 1, r))
                pts.append((b, -1, r))
        pts.sort(key=lambda p: (p[0], p[1]))
        s, e, rr = [], [], []
        active: dict = {}
        prev = None
        for t, kind, r in pts:
            if prev is not None and t > prev and active:
                top = max(active)
                if rr and rr[-1] == top and e[-1] == prev:
                    e[-1] = t
                else:
                    s.append(prev), e.append(t), rr.append(top)
            if kind == 1:
                active[r] = active.get(r, 0) + 1
            else:
                active[r] -= 1
                if not active[r]:
                    del active[r]
            prev = t
        self.s, self.e, self.r = np.array(s), np.array(e), np.array(rr)
        self._acc = 0.0  # drops_v(): launches owed to shrunk time so far
        self.cum = np.concatenate([[0.0], np.cumsum((self.e - self.s) * self.r)]) if s else np.zeros(1)

    def before_v(self, t: np.ndarray) -> np.ndarray:
        """Removed time before each instant of t."""
        if not len(self.s):
            return np.zeros(len(t))
        k = np.searchsorted(self.s, t, side="right")
        km = np.maximum(k - 1, 0)
        return np.where(k > 0, self.cum[k] - self.r[km] * np.maximum(0.0, self.e[km] - t), 0.0)

    def before_wv(self, t: np.ndarray, warp) -> np.ndarray:
        """Removed time before each instant of t, on the warp's corrected clock."""
        if not len(self.s):
            return np.zeros(len(t))
        if getattr(self, "_warp", None) is not warp:
            self._warp = warp
            self._ws, self._we = warp.at(self.s), warp.at(self.e)
            self._wcum = np.concatenate([[0.0], np.cumsum((self._we - self._ws) * self.r)])
        k = np.searchsorted(self.s, t, side="right")
        km = np.maximum(k - 1, 0)
        return np.where(k > 0, self._wcum[k] - self.r[km] * np.maximum(0.0, self._we[km] - warp.at(t)), 0.0)

    def drops_v(self, t: np.ndarray) -> np.ndarray:
        """Whether work issued at each instant of t (in order) is dropped: all of it in removed
        time, and in shrunk time all but `keep` of it (every 1/keep-th launch stays, counted
        across intervals)."""
        if not len(self.s):
            return np.zeros(len(t), dtype=bool)
        k = np.searchsorted(self.s, t, side="right") - 1
        km = np.maximum(k, 0)
        inside = (k >= 0) & (t < self.e[km])
        keep = np.where(inside, 1.0 - self.r[km], 0.0)
        shrunk = inside & (keep > 0)
        out = inside.copy()
        if shrunk.any():
            # the running sum of `keep` crosses an integer at each launch that stays
            c = np.cumsum(keep[shrunk]) + self._acc + 1e-9
            whole = np.floor(c)
            prev = np.concatenate([[np.floor(self._acc + 1e-9)], whole[:-1]])
            out[np.flatnonzero(shrunk)] = whole <= prev
            self._acc = float(c[-1] - whole[-1])
        return out

    def kept(self, t: np.ndarray) -> np.ndarray:
        """The share of recorded work at each instant of t that stays (0 where removed whole)."""
        t = np.asarray(t, dtype=np.float64)
        if not len(self.s):
            return np.ones(len(t))
        k = np.searchsorted(self.s, t, side="right") - 1
        inside = (k >= 0) & (t < self.e[np.clip(k, 0, None)])
        return np.where(inside, 1.0 - self.r[np.clip(k, 0, None)], 1.0)


class Warp:
    """Per-line profiler correction of the training thread's clock: each stretch of time
    counts `factor` of its profiled length (the line's unprofiled/profiled time, measured
    by the line recorder in unprofiled steps), `default` where no line was measured."""

    def __init__(self, lo: float, hi: float, spans, default: float):
        pts, f = [lo], []
        for a, b, fac in sorted(spans):
            a, b = max(a, pts[-1]), min(b, hi)
            if b <= a:
                continue
            if a > pts[-1]:
                f.append(default)
                pts.append(a)
            f.append(fac)
            pts.append(b)
        if pts[-1] < hi:
            f.append(default)
            pts.append(hi)
        self.s = np.array(pts[:-1])
        self.f = np.array(f)
        self.cum = np.concatenate([[0.0], np.cumsum(np.diff(pts) * self.f)])
        self.lo, self.hi, self.default = lo, hi, default

    def at(self, t: np.ndarray) -> np.ndarray:
        """__call__ at every instant of t."""
        t = np.asarray(t, dtype=np.float64)
        k = np.clip(np.searchsorted(self.s, t, side="right") - 1, 0, len(self.s) - 1)
        mid = self.cum[k] + self.f[k] * (t - self.s[k])
        return np.where(t <= self.lo, (t - self.lo) * self.default,
                        np.where(t >= self.hi, float(self.cum[-1]) + (t - self.hi) * self.default, mid))

    def __call__(self, t: float) -> float:
        """Corrected time elapsed from lo to t."""
        if t <= self.lo:
            return (t - self.lo) * self.default
        if t >= self.hi:
            return float(self.cum[-1]) + (t - self.hi) * self.default
        k = int(np.searchsorted(self.s, t, side="right")) - 1
        return float(self.cum[k] + self.f[k] * (t - self.s[k]))


def replay(tl: Timeline, change: Change = Change(), overhead_us: float = 0.0, cpu_scale: float = 1.0,
           warp: Warp | None = None) -> Result:
    """The step time with `change` applied, the profiler's cost of `overhead_us` per
    recorded event taken out of the CPU side (or, given a `warp`, each line's measured
    correction), and the rest scaled by `cpu_scale`."""
    rem = _Removed(change.remove_cpu)
    sq = _Removed(change.squeeze_cpu)
    blk = tl.blocked_removed
    t, kind, end_ = tl.ev_t, tl.ev_kind, tl.ev_end
    n_ev = len(t)
    dropped = rem.drops_v(t)
    # Where the CPU thread is before each event: syncs push it to their end (the CPU cost
    # between events does not depend on the GPU, so it is computed for all events at once).
    contrib = np.maximum(t, np.where((kind == BLOCK) & ~dropped, end_, -np.inf)) if n_ev else t
    P = np.maximum.accumulate(np.concatenate([[tl.lo], contrib]))
    a = P  # from: where the thread was; to: each event, then the window's end
    b = np.concatenate([np.maximum(t, P[:n_ev]), [tl.hi]])
    if warp is not None:
        gone = rem.before_wv(b, warp) - rem.before_wv(a, warp) + sq.before_wv(b, warp) - sq.before_wv(a, warp)
        cost = np.maximum(0.0, (warp.at(b) - warp.at(a)) - gone) * cpu_scale
    else:
        raw = ((b - a) - (rem.before_v(b) - rem.before_v(a)) - (blk.before_v(b) - blk.before_v(a))
               - (sq.before_v(b) - sq.before_v(a)))
        if overhead_us and len(tl.ov_t):
            # Recorded events inside removed time cost nothing: their weights drop out.
            w = tl.ov_w * rem.kept(tl.ov_t) if len(rem.s) else tl.ov_w
            w = w * sq.kept(tl.ov_t) if len(sq.s) else w
            cum_w = np.concatenate([[0.0], np.cumsum(w)])
            ov = overhead_us * (cum_w[np.searchsorted(tl.ov_t, b)] - cum_w[np.searchsorted(tl.ov_t, a)])
            cost = np.where(raw <= 0, 0.0, np.maximum(raw - ov, MIN_KEEP * raw)) * cpu_scale
        else:
            cost = np.maximum(raw, 0.0) * cpu_scale

    free: dict = {}
    busy: list = []
    for start, dur, stream in tl.pre:
        st = max(start, free.get(stream, -np.inf))
        free[stream] = st + dur
        if dur > 0:
            busy.append((st, st + dur))
    busy = [np.array(busy).reshape(-1, 2)]
    # GPU work queued before the window (the CPU may run steps ahead): the window's
    # own GPU work is measured from when that backlog drains.
    pre_end = max(free.values(), default=tl.lo)

    k_pos, k_g, k_lat, k_dur, k_stream = tl.kernels
    keep = ~dropped[k_pos] if len(k_pos) else np.zeros(0, bool)
    if change.drop_gpu:
        keep &= ~np.isin(k_g, np.fromiter(change.drop_gpu, np.int64))
    if change.gpu_scale:
        sg = np.array([g for g, _ in change.gpu_scale], np.int64)
        sf = np.array([f for _, f in change.gpu_scale], np.float64)
        o = np.argsort(sg, kind="stable")
        sg, sf = sg[o], sf[o]
        j = np.clip(np.searchsorted(sg, k_g, side="right") - 1, 0, max(len(sg) - 1, 0))
        hit = sg[j] == k_g  # the last factor given for a kernel wins, as dict() did
        k_dur = np.where(hit, k_dur * sf[j], k_dur)
    # The CPU thread's clock at each event: costs summed, plus the syncs the change keeps
    # from waiting (their own cost only). Syncs that still wait split the events into
    # segments; within one, the GPU queues are a max-plus scan, computed per stream at once.
    own = np.minimum(end_ - t, SYNC_OVERHEAD_US)
    is_sync = (kind == BLOCK) & ~dropped
    if change.drop_syncs and n_ev:
        nowait = is_sync & np.isin(tl.ev_idx, np.fromiter(change.drop_syncs, np.int64))
        is_sync &= ~nowait
        step_cost = cost[:n_ev] + np.where(nowait, own, 0.0)
    else:
        step_cost = cost[:n_ev]
    cum = np.cumsum(step_cost)
    waits = np.flatnonzero(is_sync).tolist()
    k_lo = np.searchsorted(k_pos, [0] + [w + 1 for w in waits])
    k_hi = np.searchsorted(k_pos, waits + [n_ev])
    T, base = tl.lo, 0.0  # base: cum up to the segment's start
    for w, a0, a1 in zip(waits + [None], k_lo.tolist(), k_hi.tolist()):
        off = T - base  # clock at event e is off + cum[e]
        if a1 > a0:
            m = keep[a0:a1]
            ready = off + cum[k_pos[a0:a1][m]] + k_lat[a0:a1][m]
            _queue(ready, k_dur[a0:a1][m], k_stream[a0:a1][m], free, busy)
        if w is None:
            T = off + (cum[-1] if n_ev else 0.0)
            break
        T = max(off + cum[w] + own[w], max(free.values(), default=-np.inf))
        base = cum[w]
    T += cost[-1]
    cpu_end = T
    gpu_end = max(free.values(), default=T)
    end = max(T, gpu_end)
    n = max(tl.n_steps, 1)
    # Steady state: the slower of the CPU's rate and the GPU's.
    step = max((cpu_end - tl.lo) / n, (gpu_end - max(tl.lo, pre_end)) / n, change.floor_us)
    b = np.concatenate(busy)
    gbusy = M.union_length(b[:, 0], b[:, 1], tl.lo, end) / n if len(b) else 0.0
    return Result(step, gbusy, (cpu_end - tl.lo) / n)


def _queue(ready: np.ndarray, dur: np.ndarray, stream: np.ndarray, free: dict, busy: list) -> None:
    """Run work on its streams in order, each item no earlier than ready and than the
    stream's previous end: end_k = D_k + max(free, max_j<=k (ready_j - D_{j-1})), D the
    running sum of durations (a max-plus scan, vectorized)."""
    if not len(ready):
        return
    if (stream == stream[0]).all():
        groups = [(int(stream[0]), slice(None))]
    else:
        o = np.argsort(stream, kind="stable")
        ready, dur, stream = ready[o], dur[o], stream[o]
        cuts = np.flatnonzero(np.diff(stream)) + 1
        bounds = [0, *cuts.tolist(), len(stream)]
        groups = [(int(stream[i]), slice(i, j)) for i, j in zip(bounds[:-1], bounds[1:])]
    for s, sl in groups:
        r, d = ready[sl], dur[sl]
        D = np.cumsum(d)
        end = D + np.maximum(np.maximum.accumulate(r - (D - d)), free.get(s, -np.inf))
        free[s] = float(end[-1])
        pos = d > 0
        busy.append(np.column_stack([(end - d)[pos], end[pos]]))


def _solve(step_of, target: float, lo: float, hi: float, rtol: float = 3e-4) -> float:
    """x in [lo, hi] at which the monotonic step_of(x) meets target to within rtol. Each
    step_of is a whole replay (seconds on a large trace): regula falsi (Illinois), as the
    step is nearly linear in x, needs a handful where bisection to the same width needs ~12."""
    f_lo, f_hi = step_of(lo) - target, step_of(hi) - target
    if f_lo * f_hi > 0:  # target outside the range: the nearer end
        return lo if abs(f_lo) < abs(f_hi) else hi
    side = 0
    for _ in range(40):
        if f_hi == f_lo:
            break
        x = hi - f_hi * (hi - lo) / (f_hi - f_lo)
        fx = step_of(x) - target
        if abs(fx) <= rtol * target or hi - lo < 1e-6:
            return x
        if fx * f_hi > 0:
            hi, f_hi = x, fx
            if side == 1:
                f_lo /= 2
            side = 1
        else:
            lo, f_lo = x, fx
            if side == -1:
                f_hi /= 2
            side = -1
    return (lo + hi) / 2


def calibrate(tl: Timeline, unprofiled_us: float | None, cuda: bool,
              warp: Warp | None = None) -> tuple[tuple[float, float], str]:
    """(per-event cost µs, CPU scale) at which the unchanged replay matches the
    unprofiled step time, and a note saying what was taken out."""
    base = replay(tl).step_us
    if warp is not None:
        # Each line corrected by its own measured ratio; a residual uniform scale absorbs
        # what the line log cannot see (the recorder's own cost, noise).
        w_us = replay(tl, warp=warp).step_us
        c = 1.0
        if unprofiled_us and w_us > 0:
            c = _solve(lambda x: replay(tl, cpu_scale=x, warp=warp).step_us, unprofiled_us, 0.2, 5.0)
        return (0.0, c), (f"profiler overhead taken out line by line against the unprofiled steps' line log"
                          f" ({base / 1000:.3g} ms profiled -> {w_us / 1000:.3g} ms"
                          + (f", {unprofiled_us / 1000:.3g} ms measured" if unprofiled_us else "") + ")")
    o = OP_US["cuda" if cuda else "cpu"]
    if not unprofiled_us:
        return (o, 1.0), f"no unprofiled timing: profiler overhead taken out at {o:.2g} us per recorded op"
    what = f"{base / 1000:.3g} ms profiled, {unprofiled_us / 1000:.3g} ms unprofiled"
    if base <= unprofiled_us:
        # No visible overhead (a GPU-bound step hides it, or noise): keep the per-event
        # cost, since it counts once a fix moves the bottleneck to the CPU.
        return (o, 1.0), f"profiler overhead taken out at {o:.2g} us per recorded op ({what})"
    if replay(tl, overhead_us=o).step_us <= unprofiled_us:
        # less than the per-event cost explains the difference
        o = _solve(lambda x: replay(tl, overhead_us=x).step_us, unprofiled_us, 0.0, o)
        return (o, 1.0), f"profiler overhead taken out: {o:.2g} us per recorded op ({what})"
    lo_c, hi_c = 0.02, 1.0
    if replay(tl, overhead_us=o, cpu_scale=lo_c).step_us > unprofiled_us:
        return (o, lo_c), f"GPU time alone exceeds the unprofiled step: estimates are rough ({what})"
    c = _solve(lambda x: replay(tl, overhead_us=o, cpu_scale=x).step_us, unprofiled_us, lo_c, hi_c)
    return (o, c), f"profiler overhead taken out: {o:.2g} us per recorded op, then CPU time x{c:.2f} ({what})"
