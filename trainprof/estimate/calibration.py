"""Calibration: the profiler's own cost, taken out of the replay once per run, before any
rule reads a time.

First per recorded event (each op and runtime call OP_US, each traced Python frame
PY_WEIGHT of that; the costs bench/probe_overhead.py measures), so that a step of many
tiny ops loses more of its profiled time than a step of long ones; then, if the replay is
still slower than the unprofiled step, the rest of the CPU side is scaled uniformly until
it matches (the Python tracer slows some code far more than its frame count says). Where
the unprofiled steps' line log exists and the step is CPU-bound, each line is corrected by
its own measured ratio instead (a Warp of the training thread's clock).
"""

from __future__ import annotations

from dataclasses import dataclass

from .change import Change
from .intervals import Warp
from .replay import replay
from .timeline import BLOCK, Timeline

# Profiler cost per recorded op or runtime call (a traced Python frame costs timeline.PY_WEIGHT
# of it). bench/probe_overhead.py measures ~3.8 us per op with its launch and ~0.43 us
# per Python call on the H100 host (torch 2.11), ~1 us and ~0.2 us on a 2-core CPU host
# (torch 2.13) -- from a shallow loop. Real training code records deeper stacks: the
# fixed runs of excessive_logging and checkpoint_every_step (sample_traces/) imply 4-8 us
# per unit against their unprofiled step times, hence 4 us (in-sample; see ESTIMATES.md).
OP_US = {"cuda": 4.0, "cpu": 2.0}
# A line's correction (unprofiled over profiled time) is kept within these bounds. The profiler
# only adds time: a line slower unprofiled than profiled was waiting there (the GIL held by a
# writer thread, the GPU), a wait a fix elsewhere may take away -- not work to scale up.
WARP_MIN, WARP_MAX = 0.05, 1.0
WARP_MIN_US = 20.0  # a line needs this much profiled time per step to be corrected on its own
ISSUE_MAX = 3.0  # a GPU-bound step's per-event cost, held to its timed issue, rises to this many times OP_US


@dataclass(frozen=True, eq=False)
class Calibration:
    """The profiler's cost as taken out of this run: per recorded event (µs), then a uniform
    CPU scale, or line by line (warp); what the note says was done."""

    overhead_us: float
    cpu_scale: float
    warp: Warp | None
    note: str
    timeline: Timeline

    @property
    def overhead(self) -> tuple[float, float]:
        return self.overhead_us, self.cpu_scale

    def cpu_us(self, a: float, b: float) -> float:
        """What the training thread's time [a, b) would be without the profiler."""
        return self.timeline.unprofiled(a, b, self.overhead, self.warp)


def make_warp(lo: float, hi: float, spans_by_line: dict, line_us: dict, unprofiled_lines: dict | None,
              own=None) -> Warp | None:
    """The per-line correction of the training thread's clock from the unprofiled steps' line
    log: each line's unprofiled over profiled time per step, the whole log's ratio elsewhere.
    own(key, p): the line's profiled time less the profiler's per-event cost; where the log
    timed the line longer than that, the line waited there (on a full launch queue, the GIL,
    another line's garbage): a wait the replay models or a fix elsewhere takes away."""
    if not unprofiled_lines:
        return None
    total_u = sum(unprofiled_lines.values())
    total_p = sum(v for k, v in line_us.items() if k is not None)
    if not total_u or not total_p:
        return None
    default = min(WARP_MAX, max(WARP_MIN, total_u / total_p))
    factor, own_factor = {}, {}
    for key, p in line_us.items():
        u = unprofiled_lines.get(key)
        if key is not None and u is not None and p >= WARP_MIN_US:
            factor[key] = min(WARP_MAX, max(WARP_MIN, u / p))
            if own is not None:
                own_factor[key] = min(factor[key], max(WARP_MIN, own(key, p) / p))
    warp = Warp(lo, hi, [(a, b, factor.get(k, default)) for k, iv in spans_by_line.items() for a, b in iv], default)
    if any(own_factor[k] < 0.9 * factor[k] for k in own_factor):
        warp.own = Warp(lo, hi, [(a, b, own_factor.get(k, factor.get(k, default)))
                                 for k, iv in spans_by_line.items() for a, b in iv], default)
    return warp


def calibration(tl: Timeline, unprofiled_us: float | None, cuda: bool, warp: Warp | None,
                issue_us: float | None = None) -> Calibration:
    (o, c), note = calibrate(tl, unprofiled_us, cuda, warp, issue_us)
    return Calibration(o, c, warp, note, tl)


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
              warp: Warp | None = None, issue_us: float | None = None) -> tuple[tuple[float, float], str]:
    """(per-event cost µs, CPU scale) at which the unchanged replay matches the
    unprofiled step time, and a note saying what was taken out. On a GPU-bound step, where
    the step time cannot show the profiler's cost, the CPU side is held to issue_us: the
    unprofiled time the CPU took to issue a step onto an empty GPU queue."""
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
        # cost, since it counts once a fix moves the bottleneck to the CPU -- unless the
        # CPU was timed issuing a step faster than that leaves (deep Python stacks cost the
        # profiler more per event; seen: 27 ms left where the fixed run took 21)
        if issue_us:
            return _issue_bound(tl, o, issue_us, what)
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


def _issue_bound(tl: Timeline, o: float, issue_us: float, what: str) -> tuple[tuple[float, float], str]:
    """(per-event cost, CPU scale) at which the replayed CPU side of a step, its syncs not
    waiting, is no longer than issue_us (which may hold waits: a bound, never a target)."""
    nowait = Change(drop_syncs=frozenset(tl.ev_idx[tl.ev_kind == BLOCK].tolist()))

    def cpu_of(x: float, c: float = 1.0) -> float:
        return replay(tl, nowait, overhead_us=x, cpu_scale=c).cpu_us

    if cpu_of(o) <= issue_us:
        return (o, 1.0), f"profiler overhead taken out at {o:.2g} us per recorded op ({what})"
    timed = f"{what}; the CPU issued a step in {issue_us / 1000:.3g} ms unprofiled"
    hi = ISSUE_MAX * o
    if cpu_of(hi) <= issue_us:
        o = _solve(cpu_of, issue_us, o, hi)
        return (o, 1.0), f"profiler overhead taken out: {o:.2g} us per recorded op ({timed})"
    c = _solve(lambda x: cpu_of(hi, x), issue_us, 0.2, 1.0)
    return (hi, c), f"profiler overhead taken out: {hi:.2g} us per recorded op, then CPU time x{c:.2f} ({timed})"
