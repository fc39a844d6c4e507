"""Turn findings into step time saved, read off the what-if replay of this trace."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..finding import Estimate, Finding
from .replay import Change, Result, replay


@dataclass(frozen=True)
class WhatIf:
    """What a rule's fix would change, and what the estimate rests on."""

    change: Change
    basis: str
    keep_fraction: float = 0.0  # share of the removed cost that stays (e.g. logging every N steps: 1/N)
    bound: bool = False  # an upper bound (no single fix gets it), left out of the combined estimate
    confidence: str = "medium"
    # The kept share runs all at once every 1/keep_fraction steps (a log or checkpoint every
    # N steps), not a little each step: a burst that long drains the GPU's queue, so it
    # adds to the step instead of hiding in the CPU's slack.
    periodic: bool = False


@dataclass(frozen=True)
class Combined:
    base_ms: float
    new_ms: float
    speedup: float
    after: str
    calibration: str
    overhead: tuple[float, float]  # profiler cost taken out: µs per recorded event, then CPU scale


def _after(res: Result, floor_us: float, k: float = 1.0) -> str:
    ms = res.step_us * k / 1000
    if floor_us and res.step_us <= floor_us * 1.001:
        return f"after this the step is bound by the data loader at ~{ms:.3g} ms"
    if res.step_us and res.gpu_busy_us / res.step_us > 0.85:
        return f"after this the step is GPU-bound at ~{ms:.3g} ms"
    return f"after this the step is CPU-bound at ~{ms:.3g} ms"


def _kept(change: Change, keep: float) -> Change:
    """The change with `keep` of its removed CPU time left in place."""
    if not keep:
        return change
    return replace(change, remove_cpu=tuple((iv[0], iv[1], keep) for iv in change.remove_cpu))


def _burst_us(ctx, w: WhatIf) -> float:
    """The periodic work a throttled fix keeps, per step: keep_fraction of the removed
    CPU time, without the profiler's overhead."""
    removed = sum(ctx.unprofiled_cpu(iv[0], iv[1]) for iv in w.change.remove_cpu)
    return w.keep_fraction * removed / max(ctx.n_steps, 1)


def severity(share: float) -> str:
    return "high" if share >= 0.10 else "medium" if share >= 0.03 else "low" if share >= 0.01 else "info"


def measured(saving_ms: float, base_ms: float, basis: str, confidence: str, bound: bool = False,
             after: str = "") -> Estimate:
    """An estimate a rule measured itself, outside the replay (a wait for another rank), as a
    saving off the unprofiled step base_ms."""
    return Estimate(saving_ms=saving_ms, speedup=base_ms / (base_ms - saving_ms) if base_ms > saving_ms else 1.0,
                    basis=basis, confidence=confidence, bound=bound, after=after)


def estimate_all(ctx, findings: list[Finding]) -> tuple[list[Finding], Combined | None]:
    if not ctx.trace.ts.size or not len(ctx.steps):
        return findings, None
    tl = ctx.timeline
    o, note = ctx.calibration
    model_us = replay(tl, Change(), *o, warp=ctx.warp).step_us
    # The replay's relative change applies to the measured step: savings are in
    # unprofiled milliseconds even where the replay does not match it exactly.
    base_us = ctx.unprofiled_us or model_us
    k = base_us / model_us if model_us else 1.0
    out = []
    total_change, total_burst, outside = Change(), 0.0, 0.0
    for f in findings:
        w = f.change
        if f.estimate is not None or not isinstance(w, WhatIf):
            if f.estimate is not None and not f.estimate.bound:
                # measured outside the replay (a wait for another rank): it adds to the combined
                outside += f.estimate.saving_ms * 1000
            out.append(f)
            continue
        burst = _burst_us(ctx, w) if w.periodic else 0.0
        change = w.change if w.periodic else _kept(w.change, w.keep_fraction)
        res = replay(tl, change, *o, warp=ctx.warp)
        new_us = min(base_us, res.step_us * k + burst)
        saved = base_us - new_us
        conf = w.confidence if o[1] >= 0.3 else "low"  # a CPU scale this low: the replay fits badly
        est = Estimate(
            saving_ms=saved / 1000,
            speedup=base_us / new_us if new_us > 0 else 1.0,
            basis=w.basis,
            confidence=conf,
            bound=w.bound,
            after=_after(res, w.change.floor_us, k),
        )
        share = saved / base_us if base_us else 0.0
        msg = f.message
        if share < 0.01 and not w.bound:
            msg += " Cheap to fix, gains ~0 here."
        out.append(replace(f, estimate=est, severity=severity(share) if f.severity != "info" or share >= 0.01 else "info",
                           message=msg))
        if not w.bound:
            total_change = total_change | change
            total_burst += burst
    res = replay(tl, total_change, *o, warp=ctx.warp)
    new_us = min(base_us, res.step_us * k + total_burst)
    after = _after(res, total_change.floor_us, k)
    if outside:
        new_us = max(new_us - outside, 0.05 * base_us)
        after = f"after this the step is bound by the slowest rank's own work at ~{new_us / 1000:.3g} ms"
    combined = Combined(base_us / 1000, new_us / 1000, base_us / new_us if new_us > 0 else 1.0, after, note, o)
    return out, combined
