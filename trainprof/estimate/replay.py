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

from bisect import bisect_left
from dataclasses import dataclass

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
    ov_t: list  # start times (sorted) of the CPU events the profiler recorded on the issuing threads
    ov_w: np.ndarray  # their weights (op/runtime 1, Python frame PY_WEIGHT)
    # Launch calls that blocked because the GPU's queue was full (the CPU ran far ahead
    # of a busy GPU): waiting, not work. The replay lets the CPU run ahead instead.
    blocked: tuple = ()

    def recorded_weight(self, a: float, b: float) -> float:
        """Profiler-overhead units recorded on the issuing threads in [a, b)."""
        i, j = bisect_left(self.ov_t, a), bisect_left(self.ov_t, b)
        return float(self.ov_w[i:j].sum())

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
    gpu_of = M.gpu_by_correlation(trace)
    rt = M.runtime_mask(trace) & (trace.pid == st.pid) & (trace.ts >= lo) & (trace.ts < hi)
    launches = [i for i in np.flatnonzero(rt & (trace.corr >= 0)).tolist() if trace.corr[i] in gpu_of]
    syncs = np.flatnonzero(M.sync_calls(trace) & M.on_thread(trace, st) & (trace.ts >= lo) & (trace.ts < hi))
    gpu_idx = np.flatnonzero(M.gpu_mask(trace) & (trace.ts < hi + 1e9) & (trace.end > lo))
    # GPU work of the window's launches that ran in the window's reach (a clock-damaged
    # trace can put a launch's kernel anywhere)
    reach = set(gpu_idx.tolist())
    launch_gpu = {i: [g for g in gpu_of[int(trace.corr[i])] if g in reach] for i in launches}
    launched = {g for gs in launch_gpu.values() for g in gs}
    g_dur, g_stream, g_lat = {}, {}, {}
    # Launch latency: seen where a kernel was not queued behind another on its stream.
    order = gpu_idx[np.argsort(trace.ts[gpu_idx], kind="stable")]
    prev_end: dict = {}
    latencies, queued = [], set()
    launch_ts = {g: trace.ts[i] for i, gs in launch_gpu.items() for g in gs}
    for g in order.tolist():
        s = int(trace.stream[g])
        g_dur[g] = float(trace.dur[g])
        g_stream[g] = s
        if g in launch_ts:
            # Latency is seen only where the stream was idle when the launch came;
            # a kernel launched while its stream was busy waited in the queue.
            if launch_ts[g] >= prev_end.get(s, -np.inf):
                g_lat[g] = max(0.0, float(trace.ts[g] - launch_ts[g]))
                latencies.append(g_lat[g])
            else:
                queued.add(g)
        prev_end[s] = max(prev_end.get(s, -np.inf), trace.end[g])
    lat_med = float(np.median(latencies)) if latencies else 5.0
    for g in queued:
        g_lat[g] = min(lat_med, max(0.0, float(trace.ts[g] - launch_ts[g])))
    pre = [(float(trace.ts[g]), g_dur[g], g_stream[g]) for g in order.tolist() if g not in launched and trace.ts[g] < hi]
    ev_t = np.concatenate([trace.ts[launches], trace.ts[syncs]]) if len(launches) or len(syncs) else np.array([])
    kinds = np.concatenate([np.full(len(launches), LAUNCH), np.full(len(syncs), BLOCK)]).astype(np.int8)
    idxs = np.concatenate([np.asarray(launches, np.int64), syncs.astype(np.int64)])
    ends = np.concatenate([trace.end[launches], trace.end[syncs]]) if len(idxs) else np.array([])
    o = np.argsort(ev_t, kind="stable")
    gm = M.gpu_mask(trace) & win
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
    if launches:
        ld = trace.dur[launches]
        typical = float(np.median(ld))
        long = np.flatnonzero(ld > max(BLOCKED_LAUNCH_US, 20 * typical))
        blocked = tuple((float(trace.ts[launches[k]] + typical), float(trace.end[launches[k]])) for k in long.tolist())
    return Timeline(lo, hi, len(st), ev_t[o], kinds[o], idxs[o], ends[o], launch_gpu,
                    g_dur, g_stream, g_lat, pre, gpu_end, trace.ts[ri].tolist(), weight, blocked)


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
        self._acc = 0.0  # drops(): launches owed to shrunk time so far
        self.cum = np.concatenate([[0.0], np.cumsum((self.e - self.s) * self.r)]) if s else np.zeros(1)

    def before(self, t: float) -> float:
        """Removed time before instant t."""
        if not len(self.s):
            return 0.0
        k = int(np.searchsorted(self.s, t, side="right"))
        if k == 0:
            return 0.0
        return float(self.cum[k] - self.r[k - 1] * max(0.0, self.e[k - 1] - t))

    def before_w(self, t: float, warp) -> float:
        """Removed time before t, on the warp's corrected clock."""
        if not len(self.s):
            return 0.0
        if getattr(self, "_warp", None) is not warp:
            self._warp = warp
            self._ws = np.array([warp(x) for x in self.s])
            self._we = np.array([warp(x) for x in self.e])
            self._wcum = np.concatenate([[0.0], np.cumsum((self._we - self._ws) * self.r)])
        k = int(np.searchsorted(self.s, t, side="right"))
        if k == 0:
            return 0.0
        return float(self._wcum[k] - self.r[k - 1] * max(0.0, self._we[k - 1] - warp(t)))

    def inside(self, t: float) -> bool:
        """Whether t falls in removed (or shrunk) time: work issued there is dropped."""
        if not len(self.s):
            return False
        k = int(np.searchsorted(self.s, t, side="right")) - 1
        return k >= 0 and t < self.e[k]

    def drops(self, t: float) -> bool:
        """Whether work issued at t is dropped: all of it in removed time, and in shrunk
        time all but `keep` of it (every 1/keep-th launch stays)."""
        if not len(self.s):
            return False
        k = int(np.searchsorted(self.s, t, side="right")) - 1
        if k < 0 or t >= self.e[k]:
            return False
        keep = 1.0 - float(self.r[k])
        if keep <= 0:
            return True
        acc = self._acc = self._acc + keep
        if acc >= 1.0:
            self._acc = acc - 1.0
            return False
        return True

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
    blk = _Removed(tl.blocked)
    # Recorded events inside removed time cost nothing: their weights drop out.
    if overhead_us and len(tl.ov_t):
        w = tl.ov_w * rem.kept(tl.ov_t) if len(rem.s) else tl.ov_w
        w = w * sq.kept(tl.ov_t) if len(sq.s) else w
        cum_w = np.concatenate([[0.0], np.cumsum(w)])
        ov_t = tl.ov_t
    else:
        cum_w, ov_t = None, None

    def cpu(a: float, b: float) -> float:
        if warp is not None:
            gone = rem.before_w(b, warp) - rem.before_w(a, warp) + sq.before_w(b, warp) - sq.before_w(a, warp)
            return max(0.0, (warp(b) - warp(a)) - gone) * cpu_scale
        raw = ((b - a) - (rem.before(b) - rem.before(a)) - (blk.before(b) - blk.before(a))
               - (sq.before(b) - sq.before(a)))
        if cum_w is None or raw <= 0:
            return max(raw, 0.0) * cpu_scale
        ov = overhead_us * (cum_w[bisect_left(ov_t, b)] - cum_w[bisect_left(ov_t, a)])
        return max(raw - ov, MIN_KEEP * raw) * cpu_scale

    scale = dict(change.gpu_scale)
    free: dict = {}
    busy: list = []

    def run(ready: float, dur: float, stream: int) -> None:
        start = max(ready, free.get(stream, -np.inf))
        free[stream] = start + dur
        if dur > 0:
            busy.append((start, start + dur))

    for start, dur, stream in tl.pre:
        run(start, dur, stream)
    # GPU work queued before the window (the CPU may run steps ahead): the window's
    # own GPU work is measured from when that backlog drains.
    pre_end = max(free.values(), default=tl.lo)
    T, prev = tl.lo, tl.lo
    for t, kind, idx, end in zip(tl.ev_t.tolist(), tl.ev_kind.tolist(), tl.ev_idx.tolist(), tl.ev_end.tolist()):
        if t < prev:  # a launch from another thread during a sync of this one
            t_eff = prev
        else:
            t_eff = t
        T += cpu(prev, t_eff)
        prev = t_eff
        if rem.drops(t):
            continue
        if kind == LAUNCH:
            for g in tl.launch_gpu[idx]:
                if g in change.drop_gpu:
                    continue
                run(T + tl.g_lat.get(g, 0.0), tl.g_dur[g] * scale.get(g, 1.0), tl.g_stream[g])
        else:
            own = min(end - t, SYNC_OVERHEAD_US)
            if idx in change.drop_syncs:
                T += own
            else:
                T = max(T + own, max(free.values(), default=-np.inf))
            prev = max(prev, end)
    T += cpu(prev, tl.hi)
    cpu_end = T
    gpu_end = max(free.values(), default=T)
    end = max(T, gpu_end)
    n = max(tl.n_steps, 1)
    # Steady state: the slower of the CPU's rate and the GPU's.
    step = max((cpu_end - tl.lo) / n, (gpu_end - max(tl.lo, pre_end)) / n, change.floor_us)
    if busy:
        b = np.array(busy)
        gbusy = M.union_length(b[:, 0], b[:, 1], tl.lo, end) / n
    else:
        gbusy = 0.0
    return Result(step, gbusy, (cpu_end - tl.lo) / n)


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
