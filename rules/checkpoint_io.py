"""Checkpoints written every step (`torch.save`, `save_pretrained`, `save_checkpoint` in the training loop).

## What it does
Measures the training thread's time per step on each line inside the training
loop that saves a checkpoint, with the GPU syncs it forces (copying CUDA tensors
to the host), and proposes saving every N steps.

## Why it is slow
A checkpoint copies every parameter (and the optimizer state) to the host,
serializes it and writes it to disk: a full stop of training, every step.

## Example
```python
for step, (x, y) in enumerate(loader):
    ...
    torch.save(model.state_dict(), "ckpt.pt")
```

## Use instead
```python
    if step % 1000 == 0:
        torch.save(model.state_dict(), "ckpt.pt")
```
For large models, an asynchronous checkpointer (`torch.distributed.checkpoint.async_save`).

## When not to fix
A save that already runs once per epoch or every N steps (this rule only sees
saves that ran in every recorded step).
"""

from __future__ import annotations

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P

ID = "checkpoint-io"
SAVES = ("torch.save",)
SAVE_METHODS = {"save_pretrained", "save_checkpoint", "save_state"}
EVERY = (100, 500, 1000)


def _is_save(call) -> bool:
    return (call.qualname or "") in SAVES or call.method in SAVE_METHODS


def detect(run):
    n, step_us = run.n_steps, run.step_us
    sync_by_line = run.per_line(s.idx for s in run.syncs.events) if run.trace.has_cuda else {}
    for call in run.index.calls:
        if not _is_save(call) or not run.index.in_loop(call.line):
            continue
        intervals, cost = run.line_time(run.script, call.line)
        if not intervals or cost < 10.0:
            continue  # not run in every recorded step (already guarded), or trivial
        every = next((k for k in EVERY if cost / k < 0.005 * step_us), EVERY[-1])
        syncs = sync_by_line.get(call.line, [])
        ms, base = run.cpu_ms(intervals), run.base_step_us / 1000  # unprofiled, as the step time
        yield Finding(
            rule=ID,
            title="Checkpoint written every step",
            path=run.relpath(),
            line=call.line,
            severity="medium",
            message=f"`{call.text[:60]}` runs every step and holds the training thread {ms:.3g} ms per step "
                    f"({100 * ms / base:.0f}% of the step); save every {every} steps.",
            evidence=(
                Evidence("time per step at this line", ms, "ms"),
                Evidence("share of the step", 100 * ms / base, "%"),
                Evidence("time per step at this line, profiled", cost / 1000, "ms"),
                Evidence("syncs per step", len(syncs) / n),
            ),
            saving=WhatIf(
                Change(remove_cpu=tuple(intervals), drop_syncs=frozenset(syncs)),
                basis=f"the line's measured time on the training thread over {n} steps, replayed away, "
                      f"then 1/{every} of it added back",
                keep_fraction=1.0 / every,
                periodic=True,
                confidence="high",
            ),
            fix=Fix(ID, None, f"guard with `if step % {every} == 0:` (and save at the end)"),
        )


# -- static detection (`trainprof lint`) ------------------------------------------------
def lint(index):
    """Static: a checkpoint written on every step of the training loop."""
    seen = set()
    for c in index.calls:
        if not _is_save(c) or not index.in_loop(c.line) or P.throttled(index, c.line) or c.line in seen:
            continue
        seen.add(c.line)
        yield Finding(
            rule=ID, title="Checkpoint written every step", path=index.path, line=c.line, severity="medium",
            message=f"`{c.text[:60]}` runs every step: serializing and writing the checkpoint holds the training "
                    "thread (static: suspected, not measured; `trainprof analyze` measures it).",
            fix=Fix(ID, None, f"guard with `if step % {EVERY[0]} == 0:` (and save at the end)"),
        )


RULE = Rule(ID, "Checkpoint written every step", "io", detect, __doc__, needs=("trace", "source", "lines"),
            lint=lint)
