"""Tensors built on the host and copied to the device every step: `torch.zeros(...).to(device)`, `torch.tensor(list).cuda()`.

## What it does
Finds lines in the training loop that construct a tensor on the CPU and send it
to the GPU in the same expression, measures what that line costs per step (CPU
construction, the copy, the sync the copy forces), and says whether the tensor is
loop-invariant (its arguments are literals), so it could be built once.

## Why it is slow
The tensor is built by the CPU, copied through a staging buffer, and -- without
`non_blocking` -- the copy waits for all queued GPU work. Built on the device it
is one kernel launch; built once outside the loop it costs nothing per step.

## Example
```python
for x, y in loader:
    pos = torch.arange(seq_len).to(device)
    mask = torch.tensor([1.0, 0.5, 0.25]).cuda()
```

## Use instead
```python
mask = torch.tensor([1.0, 0.5, 0.25], device=device)   # loop-invariant: once
for x, y in loader:
    pos = torch.arange(seq_len, device=device)
```

## When not to fix
When the values really come from the host each step (e.g. labels from Python
objects): then build them in the DataLoader and copy with `non_blocking=True`
from pinned memory instead. In a Python-bound loop the line may cost little.
"""

from __future__ import annotations

import ast

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.trace import measures as M

ID = "host-alloc"


def _host_factories(ctx):
    """(line, factory call, invariant) for host constructions sent to the device on the same line."""
    out = []
    for line in sorted({c.line for c in ctx.index.calls if ctx.index.in_loop(c.line)}):
        calls = ctx.index.calls_at(line)
        if not any(P.is_to_device(c) for c in calls):
            continue
        for c in calls:
            if P.is_factory(c) and c.keywords.get("device", "cpu") in ("cpu", None):
                invariant = all(_is_literal(a) for a in c.node.args)
                out.append((line, c, invariant))
                break
    return out


def _is_literal(node) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def detect(ctx):
    tr, n = ctx.trace, ctx.n_steps
    gpu_of = M.gpu_by_correlation(tr)
    copies = [int(i) for i in (M.memcpy_calls(tr) & ctx.main).nonzero()[0]]
    copies_by_line = ctx.per_line(copies)
    waits = {s.copy_call: s.idx for s in ctx.syncs if s.kind == "h2d"}
    for line, call, invariant in _host_factories(ctx):
        mine = copies_by_line.get(line, [])
        if not mine:
            continue
        intervals, cost_us = ctx.line_time(ctx.script, line)
        syncs = [waits[c] for c in mine if c in waits]
        gpu = [g for c in mine for g in gpu_of.get(int(tr.corr[c]), [])]
        nbytes = sum(int(tr.nbytes[g]) for g in gpu if tr.nbytes[g] > 0)
        blocked = sum(float(tr.dur[s]) for s in syncs) / n / 1000
        # Built on the device, each construction is still a kernel launch or so.
        launches = len(mine) / n
        keep = 0.0 if invariant else min(1.0, launches * ctx.launch_cost_us / cost_us) if cost_us else 0.0
        how = "loop-invariant: build it once before the loop" if invariant else "build it on the device (device=...)"
        yield Finding(
            rule=ID,
            title="Tensor built on the host and copied every step",
            path=ctx.relpath(),
            line=line,
            severity="medium",
            message=f"`{call.text[:60]}` is built on the CPU and copied to the GPU every step: "
                    f"{cost_us / 1000:.3g} ms per step at this line, {blocked:.3g} ms of it waiting on a sync; {how}.",
            evidence=(
                Evidence("line time per step", cost_us / 1000, "ms"),
                Evidence("copies per step", len(mine) / n),
                Evidence("bytes per step", nbytes / n, "B"),
                Evidence("CPU blocked per step", blocked, "ms"),
                Evidence("loop-invariant", "yes" if invariant else "no"),
            ),
            change=WhatIf(
                Change(remove_cpu=tuple(intervals), drop_syncs=frozenset(syncs), drop_gpu=frozenset(gpu)),
                basis="this line's measured time per step (construction, copy, sync), replayed away"
                      + ("" if invariant else f"; a device-side construction still costs ~{ctx.launch_cost_us:.0f} µs per launch"),
                keep_fraction=keep,
                confidence="high",
            ),
            fix=Fix(ID, None, how),
        )


RULE = Rule(ID, "Tensor built on the host and copied every step", "memory", detect, __doc__,
            needs=("trace", "cuda", "source", "lines"))
