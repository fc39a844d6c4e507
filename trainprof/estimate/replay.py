"""What-if replay of the recorded steps.

The model: one CPU thread runs the training loop and issues GPU work; each GPU
stream runs its work in launch order, never before the launch (plus the launch
latency seen in this trace); a sync makes the CPU wait until the GPU has done
everything issued before it. A fix is a Change to those timelines -- CPU time
removed, syncs dropped, GPU work dropped or scaled -- and the new step time is read off the replay, so time that overlaps is
counted once and a fix that only moves the bottleneck gains what it really gains.
What the data loader can deliver bounds the result outside the replay (estimates.py:
the loader's workers are other processes, not in these timelines).

Replaying with no change reproduces the measured window (a self-check); the
profiler's own cost is taken out as calibration.py measured it (per recorded event,
or line by line, then a uniform CPU scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..trace import measures as M
from .change import Change
from .intervals import Removal, Warp
from .timeline import BLOCK, MIN_KEEP, Timeline

SYNC_OVERHEAD_US = 5.0  # CPU cost left of a sync call whose wait is replayed away


@dataclass(frozen=True)
class Result:
    step_us: float
    gpu_busy_us: float  # per step, in the replayed schedule
    cpu_us: float  # per step: when the CPU thread finished issuing, over steps



def replay(tl: Timeline, change: Change = Change(), overhead_us: float = 0.0, cpu_scale: float = 1.0,
           warp: Warp | None = None) -> Result:
    """The step time with `change` applied, the profiler's cost of `overhead_us` per
    recorded event taken out of the CPU side (or, given a `warp`, each line's measured
    correction), and the rest scaled by `cpu_scale`."""
    rem = Removal(change.remove_cpu)
    sq = Removal(change.squeeze_cpu)
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
        full = warp.at(b) - warp.at(a)
        cost = np.maximum(0.0, full - gone) * cpu_scale
        if warp.own is not None and (len(rem.s) or len(sq.s)) and full.sum() > 0:
            cost = _waits_shrunk(cost, warp.own, rem, sq, a, b, float(gone.sum() / full.sum()), cpu_scale)
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
    step = max((cpu_end - tl.lo) / n, (gpu_end - max(tl.lo, pre_end)) / n)
    b = np.concatenate(busy)
    gbusy = M.union_length(b[:, 0], b[:, 1], tl.lo, end) / n if len(b) else 0.0
    return Result(step, gbusy, (cpu_end - tl.lo) / n)


def _waits_shrunk(cost, own, rem, sq, a, b, removed: float, cpu_scale: float) -> np.ndarray:
    """The CPU cost of each stretch once a change removed `removed` of the thread's time: the
    lines' own work as it was, what they spent waiting beyond it (on the GIL another thread
    held, a full launch queue, freeing the removed work's graph) shrunk in proportion to the
    work left. Seen on the device: a fix that removes 95% of a step leaves a step 1.4-3x shorter
    than the other lines' times as the slow original ran them."""
    gone = rem.before_wv(b, own) - rem.before_wv(a, own) + sq.before_wv(b, own) - sq.before_wv(a, own)
    cost_own = np.minimum(np.maximum(0.0, (own.at(b) - own.at(a)) - gone) * cpu_scale, cost)
    return cost_own + (1.0 - min(max(removed, 0.0), 1.0)) * (cost - cost_own)


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
