"""GPU->CPU syncs in the training loop: `.item()`, `float(t)`, `.tolist()`, `.cpu()`, `.numpy()`, printing or formatting a CUDA tensor, boolean-mask indexing, `torch.cuda.synchronize()`.

## What it does
Finds the lines of the training loop where the CPU thread stops and waits for the
GPU, and measures how long it waits there per step.

## Why it is slow
CUDA runs asynchronously: the CPU queues kernels and runs ahead. Reading a value
back (`loss.item()`) copies it to the host and waits until every kernel queued
before it has finished; meanwhile the CPU queues nothing, so the GPU then idles
while the CPU catches up. Several syncs per step serialize CPU and GPU entirely.

## Example
```python
for x, y in loader:
    loss = model(x).loss
    losses.append(loss.item())      # waits for the whole forward, every step
    loss.backward(); opt.step(); opt.zero_grad()
```

## Use instead
```python
running = torch.zeros((), device="cuda")
for step, (x, y) in enumerate(loader):
    loss = model(x).loss
    running += loss.detach()          # stays on the GPU
    loss.backward(); opt.step(); opt.zero_grad()
    if step % 100 == 0:
        print(running.item() / 100)   # one sync per 100 steps
        running.zero_()
```

## When not to fix
When the value drives control flow every step (NaN checks, early stopping, a
data-dependent schedule), or when the step is CPU-bound anyway: then the GPU is
already idle at the sync and removing it gains nothing; the estimate says so.
An `.item()` on a CPU tensor is not a sync.
"""

from __future__ import annotations

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P

ID = "item-sync"


def _what(ctx, line: int | None) -> str:
    if ctx.index is None or line is None:
        return "a GPU->CPU sync"
    calls = ctx.index.calls_at(line)
    for c in calls:
        if P.is_sync(c):
            return f"`{c.text}`" if len(c.text) < 60 else f"`.{c.method or c.qualname}()`"
    for c in calls:
        if P.is_logging(c):
            return f"`{c.text[:50]}` (formats a CUDA tensor)"
    if "[" in ctx.index.line_text(line):
        return "indexing with a data-dependent shape (boolean mask / nonzero)"
    return "a GPU->CPU sync"


def detect(ctx):
    events = [s for s in ctx.syncs if s.kind in ("d2h", "explicit")]
    if not events:
        return
    by_line = ctx.per_line(s.idx for s in events)
    ev_of = {s.idx: s for s in events}
    n = ctx.n_steps
    tr = ctx.trace
    for line, idxs in by_line.items():
        blocked = sum(float(tr.dur[i]) for i in idxs) / n / 1000
        gpu = [g for i in idxs for g in ev_of[i].copy_gpu]
        where = line if line is not None else (ctx.index.loops[0].line if ctx.index and ctx.index.loops else 1)
        what = _what(ctx, line)
        yield Finding(
            rule=ID,
            title="GPU->CPU sync in the training loop",
            path=ctx.relpath(),
            line=where,
            severity="medium",
            message=f"{what} makes the CPU wait for the GPU {len(idxs) / n:.3g}x per step "
                    f"({blocked:.3g} ms blocked per step).",
            evidence=(
                Evidence("syncs per step", len(idxs) / n),
                Evidence("CPU blocked per step", blocked, "ms"),
            ),
            change=WhatIf(
                Change(drop_syncs=frozenset(idxs), drop_gpu=frozenset(gpu)),
                basis=f"CPU time blocked in {len(idxs)} sync calls at this line over {n} steps; "
                      "replayed without the waits (later syncs absorb what is still owed)",
                confidence="high" if line is not None else "medium",
            ),
            fix=Fix(ID, None, "keep the value on the device (accumulate a detached tensor); read it only at log points"),
        )


RULE = Rule(ID, "GPU->CPU sync in the training loop", "sync", detect, __doc__, needs=("trace", "cuda"))
