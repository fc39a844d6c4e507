"""Collective communication: in one rank's trace, and matched across the ranks of a run.

A collective shows twice in a trace: where the training thread launched it (`c10d::allreduce_`,
`record_param_comms`, `nccl:all_reduce`) and where it ran (an `nccl...` kernel on the GPU, or a
`gloo:...` span on one of gloo's threads). Every rank launches the same collectives in the
same order, so the k-th run of step N on one rank is the k-th of step N on every other.

A collective ends on all ranks at about the same moment -- none can finish before the last
one arrives -- so how long each rank's copy lasted says who waited: the shortest is the
transfer itself, and the rest of a longer one is time spent waiting for a late peer. This
needs no clock shared between hosts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .measures import Steps, merge, on_thread, runtime_mask, union_length
from .model import CPU_OP, GPU_CATEGORIES, KERNEL, PYTHON_FUNCTION, USER_ANNOTATION, Trace

_LAUNCH_PREFIXES = ("c10d::", "nccl:", "gloo:")
_LAUNCH_NAMES = ("record_param_comms",)
_NOT_COLLECTIVES = ("c10d::wait", "c10d::barrier", "c10d::monitored_barrier")


def is_launch(name: str) -> bool:
    return (name.startswith(_LAUNCH_PREFIXES) or name in _LAUNCH_NAMES) and name not in _NOT_COLLECTIVES


@dataclass
class RankComm:
    """One rank's collectives in its recorded steps."""

    step: np.ndarray  # ProfilerStep number each collective ran in
    start: np.ndarray  # µs, sorted by step then start
    end: np.ndarray
    launch: np.ndarray  # event index of its launch (c10d's op, on any thread of the process; -1: not found)
    compute: tuple[np.ndarray, np.ndarray]  # merged intervals of this rank's compute
    n_steps: int
    step_us: float  # mean recorded step

    @property
    def dur(self) -> np.ndarray:
        return self.end - self.start

    def __len__(self) -> int:
        return len(self.start)

    def hidden(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """How much of each interval [a, b) this rank spent computing."""
        cs, ce = self.compute
        if not len(cs):
            return np.zeros(len(a))
        cum = np.concatenate([[0.0], np.cumsum(ce - cs)])

        def covered(t):  # compute time in (-inf, t): the intervals before t, and the one it is in
            k = np.searchsorted(cs, t, side="right")
            j = np.maximum(k - 1, 0)
            inside = np.clip(np.minimum(t, ce[j]) - cs[j], 0, None)
            return np.where(k > 0, cum[j] + inside, 0.0)

        return covered(b) - covered(a)


def rank_comm(trace: Trace, st: Steps) -> RankComm:
    """The collectives that ran in the recorded steps, each tied to its launch."""
    lo, hi = st.window
    main = on_thread(trace, st)
    mine = trace.pid == st.pid  # DDP launches from autograd's threads, not the training thread
    if trace.has_cuda:
        runs = np.flatnonzero(trace.cat_mask(KERNEL) & trace.name_mask(lambda n: n.lower().startswith("nccl")))
        work = trace.cat_mask(*GPU_CATEGORIES)
        work[runs] = False
        # A GPU-bound rank runs a kernel well after the step that launched it: a kernel
        # belongs to the step of its launch (the runtime call with its correlation id).
        rt = np.flatnonzero(runtime_mask(trace) & (trace.corr >= 0))
        when = dict(zip(trace.corr[rt].tolist(), trace.ts[rt].tolist()))
        launched = np.array([when.get(c, np.nan) for c in trace.corr[runs].tolist()])
    else:
        runs = np.flatnonzero(trace.cat_mask(USER_ANNOTATION) & trace.name_mask(lambda n: n.startswith("gloo:")) & ~main)
        # The training thread's own work is what a gloo collective can hide behind: its ops,
        # and the C calls Python makes (time.sleep, numpy), but not autograd's run_backward,
        # inside which DDP waits for its all-reduces once the gradients are computed.
        work = main & ((trace.cat_mask(CPU_OP) & ~trace.name_mask(is_launch))
                       | (trace.cat_mask(PYTHON_FUNCTION)
                          & trace.name_mask(lambda n: n.startswith("<built-in") and "run_backward" not in n)))
        launched = trace.ts[runs]
    keep = (launched >= lo) & (launched < hi)
    idx, launched = runs[keep], launched[keep]
    order = np.argsort(trace.ts[idx], kind="stable")
    idx, launched = idx[order], launched[order]
    step = step_of(st, launched)
    asks = mine & trace.cat_mask(CPU_OP) & (trace.ts >= lo) & (trace.ts < hi)
    c10d = asks & trace.name_mask(lambda n: n.startswith("c10d::") and is_launch(n))
    # one event per collective: c10d's op where the trace has it (record_param_comms nests in it)
    launches = np.flatnonzero(c10d if c10d.any() else asks & trace.name_mask(is_launch))
    launches = launches[np.argsort(trace.ts[launches], kind="stable")]
    lstep = step_of(st, trace.ts[launches])
    launch = np.full(len(idx), -1, np.int64)
    for n in np.unique(step):
        ran, asked = np.flatnonzero(step == n), launches[lstep == n]
        if len(asked) == len(ran):  # one launch per run: tie them in order
            launch[ran] = asked
    w = work & (trace.end > lo) & (trace.ts < hi)
    cs, ce = merge(np.clip(trace.ts[w], lo, hi), np.clip(trace.end[w], lo, hi))
    return RankComm(step, trace.ts[idx], trace.end[idx], launch, (cs, ce), len(st), float(np.mean(st.dur)))


def step_of(st: Steps, t: np.ndarray) -> np.ndarray:
    """The ProfilerStep number each instant falls in (-1: before the first)."""
    k = np.searchsorted(st.start, t, side="right") - 1
    return np.where(k >= 0, st.num[np.clip(k, 0, None)], -1)


@dataclass
class RankSummary:
    """One rank's communication per step (µs), from its own trace and its peers'."""

    rank: int
    step_us: float
    comm_us: float  # collectives running (union)
    exposed_us: float  # ... while this rank computed nothing
    waited_us: float  # time inside collectives waiting for a later peer
    late_us: float  # how much later than the next-latest peer it arrived, summed
    last_share: float  # share of the matched collectives it arrived at last
    exposed_transfer_us: float  # exposed time not spent waiting: the transfer itself
    compute_us: float  # the rank's own work: GPU kernels but NCCL's, or the training thread's ops and C calls

    @property
    def overlap(self) -> float:
        return 1.0 - self.exposed_us / self.comm_us if self.comm_us > 0 else 1.0


@dataclass
class CrossRank:
    ranks: list[RankSummary]
    matched: int  # collectives matched on every rank
    # per rank: (step, k) -> this rank's wait in that collective (µs), for the rules
    waits: list[np.ndarray]
    keys: np.ndarray  # (n, 2): step number, order within the step
    sel: list[np.ndarray]  # per rank: the matched collectives' positions in its RankComm
    transfer: np.ndarray  # µs, per matched collective: the shortest rank's duration

    @property
    def straggler(self) -> RankSummary | None:
        if len(self.ranks) < 2 or not self.matched:
            return None
        return max(self.ranks, key=lambda r: r.late_us)

    @property
    def imbalance(self) -> float:
        """The busiest rank's compute over the mean, less 1."""
        c = [r.compute_us for r in self.ranks]
        return max(c) / np.mean(c) - 1.0 if c and np.mean(c) > 0 else 0.0


def _keys(rc: RankComm) -> np.ndarray:
    """(step, order within the step) of each collective."""
    order = np.zeros(len(rc), np.int64)
    for n in np.unique(rc.step):
        m = rc.step == n
        order[m] = np.arange(int(m.sum()))
    return np.stack([rc.step, order], axis=1) if len(rc) else np.zeros((0, 2), np.int64)


def exposed(c: RankComm, a: np.ndarray, b: np.ndarray) -> float:
    """The union of [a, b) less the time this rank computed in it (concurrent collectives
    count once)."""
    s, e = merge(a, b)
    return float((e - s - c.hidden(s, e)).sum()) if len(s) else 0.0


def cross_rank(comms: list[RankComm]) -> CrossRank:
    """Match the collectives of every rank and measure who waited for whom."""
    keys = [_keys(c) for c in comms]
    common = set.intersection(*({tuple(x) for x in k.tolist()} for k in keys)) if keys else set()
    common = sorted(common)
    sel = []
    for k in keys:
        pos = {tuple(x): i for i, x in enumerate(k.tolist())}
        sel.append(np.array([pos[t] for t in common], np.int64))
    D = np.array([c.dur[ix] for c, ix in zip(comms, sel)]).reshape(len(comms), len(common))
    transfer = D.min(axis=0) if len(common) else np.zeros(0)  # the shortest rank's: the transfer itself
    waits = D - transfer
    # Who came last, and by how much it held up the next-latest (the others waited at least that)
    if len(comms) > 1 and len(common):
        late_by = np.diff(np.sort(waits, axis=0)[:2], axis=0)[0]
        last = np.argmin(waits, axis=0)
    else:
        late_by, last = np.zeros(len(common)), np.full(len(common), -1)
    out = []
    for r, (c, ix) in enumerate(zip(comms, sel)):
        n = max(c.n_steps, 1)
        t0, t1 = c.start[ix], c.end[ix]
        mine = last == r
        out.append(RankSummary(
            rank=r, step_us=c.step_us,
            comm_us=union_length(c.start, c.end) / n,
            exposed_us=exposed(c, c.start, c.end) / n,
            waited_us=union_length(t0, t0 + waits[r]) / n,
            late_us=union_length(t0[mine] - late_by[mine], t0[mine]) / n,
            last_share=float(mine.mean()) if len(common) else 0.0,
            exposed_transfer_us=exposed(c, t1 - transfer, t1) / n,  # the end of each, once all arrived
            compute_us=float((c.compute[1] - c.compute[0]).sum()) / n))
    return CrossRank(out, len(common), list(waits), np.array(common, np.int64).reshape(-1, 2), sel, transfer)


def backward_spans(trace: Trace, st: Steps) -> tuple[np.ndarray, np.ndarray]:
    """The training thread's `Tensor.backward()` calls (start, end), in order; empty where the
    trace has no Python stacks."""
    lo, hi = st.window
    m = (on_thread(trace, st) & trace.cat_mask(PYTHON_FUNCTION) & (trace.ts >= lo) & (trace.ts < hi)
         & trace.name_mask(lambda n: n.startswith("torch/_tensor.py(") and n.endswith("): backward")))
    idx = np.flatnonzero(m)
    idx = idx[np.argsort(trace.ts[idx], kind="stable")]
    return trace.ts[idx], trace.end[idx]
