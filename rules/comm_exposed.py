"""Exposed communication: collectives the rank waits for, not hidden behind compute.

## What it does
Measures, on every rank of a distributed run, how much of each step the
collectives (DDP's gradient all-reduces, FSDP's all-gathers...) run while the
rank computes nothing -- their transfer time, without the time spent waiting
for a late peer (`straggler-rank` counts that) -- and the share of communication
that overlaps compute.

## Why it is slow
DDP starts all-reducing a bucket of gradients as soon as the backward has
produced it, so most of the transfer hides behind the rest of the backward.
What is left -- the last buckets, a slow interconnect, buckets too small to use
the bandwidth, a backward too short to hide anything -- stalls every step.

## Example
```python
model = DDP(model, bucket_cap_mb=1)            # many small all-reduces
for x, y in loader:
    loss_fn(model(x), y).backward()            # the last buckets wait here
    opt.step(); opt.zero_grad()
```

## Use instead
Keep DDP's default buckets (25 MB) with `gradient_as_bucket_view=True`; skip the
all-reduce of accumulation micro-batches (`model.no_sync()`); compress the
gradients in flight (`model.register_comm_hook(None, default_hooks.bf16_compress_hook)`);
use a larger batch per rank so the backward hides more; check that the ranks
talk over NVLink/InfiniBand, not a socket.

## When not to fix
When the exposed time is a small share of the step, or comes from waiting for a
late rank (see `straggler-rank`). The saving shown is an upper bound: all of
the transfer hidden.
"""

from __future__ import annotations

from collections import Counter

from trainprof.estimate import Bound, Measured
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule

ID = "comm-exposed"
TITLE = "Communication not hidden behind compute"
MIN_SHARE = 0.03


def detect(run):
    x = run.cross_rank
    if x is None or not x.matched:
        return
    # the step shrinks only when every rank stalls less: the least exposed rank bounds it
    least = min(x.ranks, key=lambda r: r.exposed_transfer_us)
    me = x.ranks[0]
    if least.exposed_transfer_us < MIN_SHARE * me.step_us:
        return
    saving = run.unprofiled_ms(least.exposed_transfer_us)
    base = run.base_step_us / 1000
    launches = run.comm.launch[run.comm.launch >= 0]
    lines = Counter(ln for ln in (run.script_line(int(i)) for i in launches) if ln is not None)
    line = lines.most_common(1)[0][0] if lines else (run.index.loops[0].line if run.index and run.index.loops else 1)
    yield Finding(
        rule=ID, title=TITLE, path=run.relpath(), line=line, severity="medium" if saving / base >= 0.1 else "low",
        message=(f"{len(run.comm) / max(run.n_steps, 1):.0f} collectives per step; "
                 f"{me.exposed_transfer_us / 1000:.3g} ms per step of their transfer runs with rank 0 computing "
                 f"nothing ({100 * me.overlap:.0f}% of its communication overlaps compute); on the least "
                 f"exposed rank {least.exposed_transfer_us / 1000:.3g} ms."),
        evidence=(Evidence("collectives per step", round(len(run.comm) / max(run.n_steps, 1))),
                  Evidence("communication per step (rank 0)", me.comm_us / 1000, "ms"),
                  Evidence("overlapped with compute (rank 0)", round(100 * me.overlap), "%"),
                  Evidence("exposed transfer per step, least over the ranks", least.exposed_transfer_us / 1000, "ms")),
        saving=Bound(Measured(
            saving,
            basis="upper bound: every collective's transfer (its shortest duration across the ranks) hidden "
                  "behind compute on the least exposed rank",
            confidence="low")),
        fix=Fix(ID, None, "no_sync() for accumulation, default buckets, bf16 gradient compression, "
                          "a larger per-rank batch"),
    )


RULE = Rule(ID, TITLE, "distributed", detect, __doc__, needs=("ranks",))
