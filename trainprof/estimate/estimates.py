"""The one place a finding's saving becomes the estimate shown: the replay runs for each
finding's WhatIf and once for all of them together; a Measured saving is taken as
measured; a Bound is computed the same way and labelled an upper bound."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

from ..finding import Estimate, Finding, Trial
from .change import Change
from .replay import Result, replay
from .saving import Bound, Measured, WhatIf


@dataclass(frozen=True)
class Combined:
    base_ms: float
    new_ms: float
    speedup: float
    after: str
    calibration: str
    overhead: tuple[float, float]  # profiler cost taken out: µs per recorded event, then CPU scale


NEAR_TOTAL = 0.1  # a fix that leaves less than this share of the step: its speedup is rough


def severity(share: float) -> str:
    return "high" if share >= 0.10 else "medium" if share >= 0.03 else "low" if share >= 0.01 else "info"


def floor_us(change: Change, producer_us: float) -> float:
    """How fast the data loader lets the step go after the change: the pace the change sets
    for it (a loader fix), else the pace measured in this run."""
    return change.floor_us or producer_us


def bounded(base_us: float, replayed_us: float, floor: float) -> float:
    """The step after a fix: as replayed, never faster than the loader delivers, never slower
    than it is (a fix removes work)."""
    return min(base_us, max(replayed_us, floor))


def _after(res: Result, new_us: float, floor_us: float, k: float = 1.0) -> str:
    ms = new_us / 1000
    if floor_us and new_us <= floor_us * 1.001:
        return f"after this the step is bound by the data loader at ~{ms:.3g} ms"
    if res.step_us and res.gpu_busy_us / res.step_us > 0.85:
        return f"after this the step is GPU-bound at ~{ms:.3g} ms"
    return f"after this the step is CPU-bound at ~{ms:.3g} ms"


def _kept(change: Change, keep: float) -> Change:
    """The change with `keep` of its removed CPU time left in place."""
    if not keep:
        return change
    return replace(change, remove_cpu=tuple((iv[0], iv[1], keep) for iv in change.remove_cpu))


def _burst_us(run, w: WhatIf) -> float:
    """The periodic work a throttled fix keeps, per step: keep_fraction of the removed
    CPU time, without the profiler's overhead."""
    removed = sum(run.calibration.cpu_us(iv[0], iv[1]) for iv in w.change.remove_cpu)
    return w.keep_fraction * removed / max(run.n_steps, 1)


def _measured(m: Measured, base_ms: float, bound: bool) -> Estimate:
    return Estimate(saving_ms=m.ms, speedup=base_ms / (base_ms - m.ms) if base_ms > m.ms else 1.0,
                    basis=m.basis, confidence=m.confidence, bound=bound, after=m.after)


class _Replays:
    """The replay of this run's timelines with a WhatIf's change, scaled to the unprofiled step."""

    def __init__(self, run):
        self.run = run
        self.tl, cal = run.timeline, run.calibration
        self.o = cal.overhead
        model_us = replay(self.tl, Change(), *self.o, warp=cal.warp).step_us
        # The replay's relative change applies to the measured step: savings are in
        # unprofiled milliseconds even where the replay does not match it exactly.
        self.base_us = run.unprofiled_us or model_us
        self.k = self.base_us / model_us if model_us else 1.0
        # the loader's pace as run: no fix that leaves it be makes the step faster
        self.producer_us = run.producer.period_us() if run.producer is not None else 0.0

    def floor(self, change: Change) -> float:
        return floor_us(change, self.producer_us)

    def run_change(self, change: Change, burst: float) -> tuple[float, Result]:
        res = replay(self.tl, change, *self.o, warp=self.run.calibration.warp)
        return bounded(self.base_us, res.step_us * self.k + burst, self.floor(change)), res

    def estimate(self, w: WhatIf, bound: bool) -> tuple[Estimate, float, Change, float]:
        """(the estimate, µs saved per step, the change replayed, the periodic burst it keeps)"""
        burst = _burst_us(self.run, w) if w.periodic else 0.0
        change = w.change if w.periodic else _kept(w.change, w.keep_fraction)
        new_us, res = self.run_change(change, burst)
        conf = w.confidence if self.o[1] >= 0.3 else "low"  # a CPU scale this low: the replay fits badly
        saved = self.base_us - new_us
        basis = w.basis
        if new_us < NEAR_TOTAL * self.base_us and not bound:
            # the speedup is base / what is left, and what is left is the other lines as they ran
            # beside the slow work, slower than they run alone: bench/probe_residual.py timed a
            # 1.4 ms step at 2.4-3.1 ms right after 100 ms of other work on the H100 host, and
            # such estimates came out 0.64-0.8 of the measured speedup (bench/ESTIMATES.md)
            conf = "medium" if conf == "high" else conf
            basis += (f"; the step left ({new_us / 1000:.3g} ms) is under a tenth of this one, timed from the other "
                      "lines as they ran beside the slow work, slower than they will run alone: the speedup is "
                      "likely higher (`--trials` measures it)")
        est = Estimate(saving_ms=saved / 1000, speedup=self.base_us / new_us if new_us > 0 else 1.0,
                       basis=basis, confidence=conf, bound=bound,
                       after=_after(res, new_us, self.floor(change), self.k))
        return est, saved, change, burst


def estimate_all(run, findings: list[Finding]) -> tuple[list[Finding], Combined | None]:
    if not run.trace.ts.size or not len(run.steps):
        return findings, None
    rp = _Replays(run)
    base_us = rp.base_us
    out = []
    total_change, total_burst, outside = Change(), 0.0, 0.0
    for f in findings:
        s = f.saving
        bound = isinstance(s, Bound)
        inner = s.of if bound else s
        if isinstance(inner, Measured):
            step_ms = run.base_step_us / 1000
            est = _measured(inner, step_ms, bound)
            if not bound:
                # measured outside the replay (a wait for another rank): it adds to the combined
                outside += est.saving_ms * 1000
                f = replace(f, severity=severity(inner.ms / step_ms if step_ms else 0.0))
            out.append(replace(f, estimate=est))
            continue
        if not isinstance(inner, WhatIf):
            out.append(f)
            continue
        est, saved, change, burst = rp.estimate(inner, bound)
        share = saved / base_us if base_us else 0.0
        msg = f.message
        if share < 0.01 and not bound:
            msg += " Cheap to fix, gains ~0 here."
        out.append(replace(f, estimate=est, severity=severity(share) if f.severity != "info" or share >= 0.01 else "info",
                           message=msg))
        if not bound:
            total_change = total_change | change
            total_burst += burst
    new_us, res = rp.run_change(total_change, total_burst)
    after = _after(res, new_us, rp.floor(total_change), rp.k)
    if outside:
        new_us = max(new_us - outside, 0.05 * base_us)
        after = f"after this the step is bound by the slowest rank's own work at ~{new_us / 1000:.3g} ms"
    note = run.calibration.note
    return out, Combined(base_us / 1000, new_us / 1000, base_us / new_us if new_us > 0 else 1.0, after, note, rp.o)


# -- measured: trials.json (fix/trials.py) beside the estimates -----------------------

def with_trials(findings: list[Finding], trials: dict, root: str) -> list[Finding]:
    """The findings, those that were tried (trials.json) with their measured trial."""
    # trials.json names files as analysis.json does: relative to the root, from wherever we run
    root = os.path.abspath(root)
    got = {}
    for t in trials.get("findings") or []:
        try:  # a run directory is input: a damaged or foreign trials.json is ignored, entry by entry
            tr = t["trial"]
            num = _speedups(tr)
            if num is None:
                continue
            params = {str(k): v for k, v in (tr.get("params") or {}).items() if isinstance(v, (int, float, str))}
            trial = Trial(*num, int(tr["rounds"]), params, str(tr.get("change", ""))[:300],
                          str(tr.get("parity", ""))[:300], int(tr["steps"]) if tr.get("steps") else None)
            got[(str(t["rule"]), os.path.normpath(os.path.join(root, str(t["path"]))), int(t["line"]))] = trial
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    out = []
    for f in findings:
        t = got.get((f.rule, os.path.abspath(f.path), f.line))
        if t is not None:
            f = replace(f, trial=t)
        out.append(f)
    return out


def _speedups(tr) -> list[float] | None:
    """A trial's (speedup, low, high), each a finite positive number, else None (trials.json is input).
    Raises KeyError/TypeError/ValueError where they are missing or not numbers."""
    num = [float(tr[k]) for k in ("speedup", "low", "high")]
    return num if all(math.isfinite(x) and x > 0 for x in num) else None


def combined_trial(trials: dict | None) -> dict | None:
    """trials.json's combined trial of the safe fixes, its numbers checked (it is input)."""
    c = (trials or {}).get("combined")
    try:
        num = _speedups(c)
        if num is None:
            return None
        return dict(zip(("speedup", "low", "high"), num), rounds=int(c["rounds"]), change=str(c.get("change", ""))[:300])
    except (KeyError, TypeError, ValueError):
        return None


def untried(trials: dict | None) -> str | None:
    """A note naming the fixes that the trial budget left untried (trials.json is input: at most
    a few, each field shortened)."""
    rows = [t for t in (trials or {}).get("skipped") or [] if isinstance(t, dict)][:8]
    names = []
    for t in rows:
        p = t.get("params") if isinstance(t.get("params"), dict) else {}
        knobs = ", ".join(f"{str(k)[:30]}={str(v)[:20]}" for k, v in list(p.items())[:4])
        names.append(str(t.get("fix"))[:40] + (f" at line {t['line']}" if isinstance(t.get("line"), int) else "")
                     + (f" ({knobs})" if knobs else ""))
    if not names:
        return None
    return ("trials: not tried within --trial-budget (a larger budget tries them): "
            + ", ".join(dict.fromkeys(names)))
