"""A straggler rank: one rank arrives late at the collectives and every other rank waits.

## What it does
Matches each collective (all-reduce, all-gather...) across the ranks of a
distributed run, measures on every rank how long it waited inside it for the
last peer to arrive, and names the rank that arrived last -- with the line of
the script that takes longer on that rank than on the others.

## Why it is slow
A collective finishes on all ranks only once the last one joins. Extra work on
one rank (a slower data path, an uneven batch, logging or checkpointing on rank
0 only, a slower GPU) makes every other rank idle for as long, every step: the
whole job runs at the pace of its slowest rank.

## Example
```python
loss = loss_fn(model(x), y)
if rank == 0:
    writer.add_histogram("w", model.module.fc.weight, step)   # rank 0 only, every step
loss.backward()
```

## Use instead
Move the extra work off the critical path or share it out: log every N steps,
balance the batches (same sequence lengths or token counts per rank), give
every rank the same data-loading resources, or do rank-0-only work
asynchronously.

## When not to fix
When the late arrival is a one-off (the first step, a checkpoint every few
hundred steps), or the imbalance comes from the data itself and evening it out
would change the training. The saving shown is what the other ranks waited for
the late one: it assumes the late rank's extra work could be removed, not moved
to another rank.
"""

from __future__ import annotations

import numpy as np

from trainprof.estimate import Measured
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule

ID = "straggler-rank"
TITLE = "A straggler rank: the others wait for it at every collective"
MIN_SHARE = 0.02  # of the step: less is noise between ranks


def _line_excess(run, rank: int, unprofiled: bool = False) -> list[tuple[float, tuple[str, int], float]]:
    """The script's lines that take longer on `rank` than on the other ranks: (µs per step
    more than their median, (path, line), µs per step on `rank`), largest first. With
    `unprofiled`, from each rank's unprofiled line log: the profiler cannot have made the
    difference there."""
    if len(run.ranks) < 2:
        return []
    per = [None if r.lines is None else r.lines.unprofiled if unprofiled else r.lines.per_step for r in run.ranks]
    if per[rank] is None:
        return []
    out = []
    for key, t in per[rank].items():
        if key is None or key[0] != run.script:
            continue
        others = [p.get(key, 0.0) for i, p in enumerate(per) if i != rank and p is not None]
        if others:
            out.append((t - float(np.median(others)), key, t))
    return sorted(out, reverse=True)


def detect(run):
    x = run.cross_rank
    s = x.straggler if x is not None else None
    if s is None or s.late_us < MIN_SHARE * s.step_us or s.last_share < 0.5:
        return
    others = [r for r in x.ranks if r.rank != s.rank]
    waited = sum(r.waited_us for r in others) / len(others)
    base = run.base_step_us / 1000
    saving = run.unprofiled_ms(s.late_us)
    basis = [f"the time rank {s.rank} arrived after the next-latest rank, summed per step over the matched "
             "collectives (each rank's wait inside a collective: its duration less the shortest rank's)"]
    # The profiler slows ranks unevenly (seen on 2 H200s: rank 0 late by 18 ms a step profiled,
    # the ranks even without it): bound the lateness by what holds without the profiler.
    if run.trace.has_cuda:
        # The kernels take about as long without the profiler: the step cannot drop below the
        # busiest rank's own GPU work plus the transfer no rank could hide (a waiting rank's
        # transfer shows as unhidden only because it waited). What the profiled lateness
        # says beyond that, the profiler made (seen on 2 H200s: a rank 'late' by 7 ms a step
        # profiled, in a run whose unprofiled step was the GPU's floor).
        floor = (max(r.compute_us for r in x.ranks) + min(r.exposed_transfer_us for r in x.ranks)) / 1000
        if base - floor < MIN_SHARE * base:
            return
        saving = min(saving, base - floor)
        basis.append(f"at most the unprofiled step less the GPU's floor ({floor:.3g} ms: the busiest rank's "
                     "kernels and the transfer no rank hid)")
    # Where the unprofiled steps' line logs exist, the extra work must show there too. A line
    # counts where it takes longer on this rank both with the profiler and without
    # (where a GPU-bound rank's CPU blocks on a full queue differs between ranks, unprofiled).
    extra = _line_excess(run, s.rank, unprofiled=True)
    excess = _line_excess(run, s.rank)
    confidence = "low"
    if extra:
        prof = {key: e for e, key, _ in excess}
        both = sum(min(e, prof.get(key, 0.0)) for e, key, _ in extra if e > 0 and prof.get(key, 0.0) > 0) / 1000
        if both < MIN_SHARE * base:
            return  # a difference made by the profiler
        saving, confidence = min(saving, both), "medium"
        basis.append(f"at most the extra time of rank {s.rank}'s lines, both profiled and unprofiled")
    path, line, where = run.relpath(), 1, ""
    ev = [Evidence(f"rank {s.rank} arrived last at", round(100 * s.last_share), f"% of {x.matched} collectives"),
          Evidence(f"rank {s.rank} late per step", s.late_us / 1000, "ms"),
          Evidence("the other ranks waited per step", waited / 1000, "ms"),
          Evidence("load imbalance (busiest rank's work over the mean)", round(100 * x.imbalance), "%")]
    if excess and excess[0][0] > 0.25 * s.late_us:
        more, (p, line), t = excess[0]
        path = run.relpath(p)
        where = (f"; line {line} takes {t / 1000:.3g} ms per step on rank {s.rank} and "
                 f"{(t - more) / 1000:.3g} ms on the others")
        ev.append(Evidence(f"line {line} on rank {s.rank}, more than the others", more / 1000, "ms per step"))
    elif run.index is not None and run.index.loops:
        line = run.index.loops[0].line
    yield Finding(
        rule=ID, title=TITLE, path=path, line=line, severity="medium",
        message=(f"rank {s.rank} arrives last at {100 * s.last_share:.0f}% of the collectives, and the other ranks "
                 f"wait {waited / 1000:.3g} ms per step inside them{where}. Without that rank's extra work a step "
                 f"would take about {saving:.3g} ms less."),
        evidence=tuple(ev),
        saving=Measured(
            saving,
            basis="; ".join(basis),
            confidence=confidence,
            after="if the late rank's extra work is removed; moved to another rank, it gains nothing"),
        fix=Fix(ID, None, f"even out the work: what rank {s.rank} does and the others do not"),
    )


RULE = Rule(ID, TITLE, "distributed", detect, __doc__, needs=("ranks",))
