"""The optimizer updates parameters one tensor at a time (`foreach=False`, or an optimizer without a multi-tensor path).

## What it does
Measures the training thread's time inside `optimizer.step()` per step and the
kernels it launches; flags a step that launches several kernels per parameter
with no multi-tensor (`foreach`) or fused kernel among them.

## Why it is slow
A per-parameter Adam launches ~5-10 tiny kernels for every parameter tensor; a
model with hundreds of tensors spends milliseconds of CPU time launching
microsecond kernels. `foreach=True` batches the tensors into a few multi-tensor
kernels; `fused=True` (CUDA) does the whole update in one or two kernels.
(Measured on an H100: a launch-bound MLP with per-parameter Adam gained 2x from
foreach/fused, and nothing from `torch.compile` of the model alone.)

## Example
```python
opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
```

## Use instead
```python
opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)   # or foreach=True
```

## When not to fix
When the optimizer's time is a small share of the step (the estimate says so), or
the optimizer has no foreach/fused implementation (write none by hand: use one
that has, or `torch.compile` the optimizer step).
"""

from __future__ import annotations

import numpy as np

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.trace import measures as M

ID = "unfused-optimizer"
MIN_LAUNCHES = 40  # per step inside optimizer.step()
MIN_SHARE = 0.03
# Launches a foreach/fused step keeps: a few multi-tensor kernels per ~hundred tensors.
KEPT_LAUNCHES = 10


def detect(ctx):
    tr, n, tl = ctx.trace, ctx.n_steps, ctx.timeline
    lo, hi = ctx.steps.window
    m = (tr.cat_mask(M.USER_ANNOTATION) & tr.name_mask(lambda s: s.startswith("Optimizer.step#"))
         & M.on_thread(tr, ctx.steps) & (tr.ts >= lo) & (tr.ts < hi))
    spans = M.top_level(tr, m)
    if not len(spans):
        return
    s, e = tr.ts[spans], tr.end[spans]
    li = np.array(list(tl.launch_gpu), dtype=np.int64)
    if not len(li):
        return
    inside = li[M.within(tr.ts[li], s, e)]
    names = {tr.name(g) for i in inside.tolist() for g in tl.launch_gpu[i]}
    if any("multi_tensor" in x or "fused" in x.lower() for x in names):
        return  # already foreach/fused
    per_step = len(inside) / n
    cost = float((e - s).sum()) / n
    if per_step < MIN_LAUNCHES or cost < MIN_SHARE * ctx.step_us:
        return
    opt = tr.name(int(spans[0])).split("#", 1)[1].split(".")[0]
    call = None
    if ctx.index is not None:
        call = next((c for c in ctx.index.calls if (c.qualname or "").startswith("torch.optim.")
                     and c.qualname.rsplit(".", 1)[-1] == opt), None)
    line = call.line if call else (ctx.script_line(int(spans[0])) or 1)
    why = ("foreach=False" if call and call.keywords.get("foreach") is False else "per-parameter updates")
    keep = min(1.0, KEPT_LAUNCHES / per_step)
    yield Finding(
        rule=ID,
        title="Optimizer updates one tensor at a time",
        path=ctx.relpath(),
        line=line,
        severity="medium",
        message=f"`{opt}.step()` launches {per_step:.0f} kernels per step ({why}) and holds the training thread "
                f"{cost / 1000:.3g} ms per step ({100 * cost / ctx.step_us:.0f}% of the step); "
                f"foreach/fused updates launch a handful.",
        evidence=(
            Evidence("optimizer step time", cost / 1000, "ms"),
            Evidence("kernel launches in optimizer.step() per step", per_step),
            Evidence("optimizer", opt),
        ),
        change=WhatIf(
            Change(remove_cpu=tuple(zip(s.tolist(), e.tolist()))),
            basis=f"optimizer.step()'s measured time (and its kernels) replayed away, then "
                  f"{KEPT_LAUNCHES} launches' worth of it added back",
            keep_fraction=keep,
            confidence="medium",
        ),
        fix=Fix(ID, None, f"torch.optim.{opt}(..., fused=True) on CUDA (or foreach=True)"),
    )


RULE = Rule(ID, "Optimizer updates one tensor at a time", "compute", detect, __doc__, needs=("trace", "cuda"))
