"""Logging every step: `print`, `logging`, `SummaryWriter.add_*` (histograms above all), progress-bar updates.

## What it does
Measures, per logging line in the training loop, the time the training thread
spends on that line each step -- formatting, the syncs it forces by reading
CUDA tensors, and the writer's own work -- and proposes logging every N steps,
with N chosen so that what remains costs under 0.5% of a step.

## Why it is slow
Each logged value is read back from the GPU (a sync), formatted in Python and
written out. Histograms are worse: they copy whole weight tensors to the host and
bin them in NumPy; SummaryWriter's background thread then serializes and writes
them, holding the GIL while the training thread waits. At hundreds of steps per
second this dominates the step.

## Example
```python
for step, (x, y) in enumerate(loader):
    ...
    writer.add_scalar("loss", loss, step)
    for name, p in model.named_parameters():
        writer.add_histogram(name, p, step)
```

## Use instead
```python
    if step % 100 == 0:
        writer.add_scalar("loss", loss, step)
    if step % 1000 == 0:
        for name, p in model.named_parameters():
            writer.add_histogram(name, p, step)
```

## When not to fix
Logs you read every step while debugging; epoch-end logs (they run once an
epoch, not per step, and are not flagged). If the line costs under 1% of the
step here, the estimate says it gains ~0.
"""

from __future__ import annotations

import numpy as np

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.trace import measures as M

ID = "excessive-logging"
EVERY = (10, 50, 100, 500, 1000)


def _every(cost_us: float, step_us: float) -> int:
    for n in EVERY:
        if cost_us / n < 0.005 * step_us:
            return n
    return EVERY[-1]


def _writer_stalls(ctx, own: list) -> list:
    """Training-thread time outside the logging lines that overlaps the writer thread's
    Python work (GIL contention): it goes when the logging goes."""
    ws, we = M.background_python(ctx.trace, ctx.steps, "tensorboard")
    if not len(ws):
        return []
    os_, oe = M.merge(np.array([a for a, _ in own] or [0.0]), np.array([b for _, b in own] or [0.0]))
    out = []
    for a, b in zip(ws.tolist(), we.tolist()):
        # clip each writer interval against the logging lines' own time (already removed)
        k = int(np.searchsorted(oe, a, side="right"))
        while a < b:
            if k < len(os_) and os_[k] < b:
                if os_[k] > a:
                    out.append((a, float(os_[k])))
                a = max(a, float(oe[k]))
                k += 1
            else:
                out.append((a, b))
                break
    return out


def detect(ctx):
    n = ctx.n_steps
    sync_by_line = ctx.per_line(s.idx for s in ctx.syncs)
    step_us = ctx.step_us
    lines = []
    for line in sorted(ctx.logging_lines):
        intervals, cost_us = ctx.line_time(ctx.script, line)
        if intervals and cost_us >= 10.0:  # shown even when cheap: "gains ~0 here" says so
            call = next(c for c in ctx.index.calls_at(line) if P.is_logging(c))
            lines.append((line, intervals, cost_us, call))
    # The writer thread's GIL time goes with the costliest SummaryWriter line.
    writer = [x for x in lines if (x[3].method or "").startswith("add_")]
    top_writer = max(writer, key=lambda x: x[2])[0] if writer else None
    stalls = _writer_stalls(ctx, [iv for x in lines for iv in x[1]]) if top_writer else []
    for line, intervals, cost_us, call in lines:
        syncs = sync_by_line.get(line, [])
        every = _every(cost_us, step_us)
        extra = stalls if line == top_writer else []
        stall_us = sum(b - a for a, b in extra) / n
        yield Finding(
            rule=ID,
            title="Logging every step",
            path=ctx.relpath(),
            line=line,
            severity="medium",
            message=f"`{call.text[:60]}` runs every step and holds the training thread "
                    f"{cost_us / 1000:.3g} ms per step ({100 * cost_us / step_us:.1f}% of the step"
                    + (f", {len(syncs) / n:.3g} GPU syncs" if syncs else "")
                    + (f"; the writer thread holds the GIL {stall_us / 1000:.3g} ms more" if stall_us else "")
                    + f"); log every {every} steps.",
            evidence=(
                Evidence("time per step at this line", cost_us / 1000, "ms"),
                Evidence("share of the step", 100 * cost_us / step_us, "%"),
                Evidence("syncs per step", len(syncs) / n),
            ) + ((Evidence("writer thread's Python time overlapping the step", stall_us / 1000, "ms"),) if extra else ()),
            change=WhatIf(
                Change(remove_cpu=tuple(intervals) + tuple(extra), drop_syncs=frozenset(syncs)),
                basis=f"the line's measured time on the training thread over {n} steps"
                      + (" and the writer thread's Python time overlapping the rest of the step" if extra else "")
                      + f", replayed away, then 1/{every} of it added back",
                keep_fraction=1.0 / every,
                confidence="high",
            ),
            fix=Fix(ID, None, f"guard with `if step % {every} == 0:`; keep epoch-end logs"),
        )


RULE = Rule(ID, "Logging every step", "logging", detect, __doc__, needs=("trace", "source", "lines"))
