"""Gradient accumulation under DDP without `no_sync()`.

## What it does
Flags a training loop that accumulates gradients (`backward()` every iteration,
`optimizer.step()` only under a condition) on a DistributedDataParallel model,
in a script that never calls `model.no_sync()`.

## Why it is slow
DDP all-reduces the gradients during every backward pass. When gradients are
accumulated over k micro-batches, only the last all-reduce is needed: the other
k-1 move the whole gradient across the network for nothing, and each one the
backward cannot hide stalls the step. With k=4 that is three of every four
all-reduces wasted.

## Example
```python
for i, (x, y) in enumerate(loader):
    loss_fn(model(x), y).backward()
    if (i + 1) % accum == 0:
        opt.step(); opt.zero_grad()
```

## Use instead
```python
for i, (x, y) in enumerate(loader):
    last = (i + 1) % accum == 0
    with contextlib.nullcontext() if last else model.no_sync():
        loss_fn(model(x), y).backward()
    if last:
        opt.step(); opt.zero_grad()
```

## When not to fix
With k=1 (no accumulation) there is nothing to skip. Under `no_sync()` the
gradients pile up unreduced on each rank until the synced step, which costs no
extra memory for DDP's own buckets but does for code that reads `.grad` between
micro-steps (clipping every micro-step, logging gradient norms): those read
local, unreduced gradients.
"""

from __future__ import annotations

import ast

from trainprof.finding import Finding, Fix
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P

ID = "ddp-no-sync"
TITLE = "Gradient accumulation all-reduces every micro-batch (no model.no_sync())"
_NOT_OPTIMIZERS = ("sched", "lr", "warmup")


def _calls(node, method: str) -> list[ast.Call]:
    return [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
            and c.func.attr == method]


def _optimizer_steps(node) -> list[ast.Call]:
    return [c for c in _calls(node, "step") if not any(h in ast.unparse(c.func.value).lower() for h in _NOT_OPTIMIZERS)]


def _accumulating_backwards(loop: ast.AST) -> list[ast.Call]:
    """The loop's backward calls that run every iteration while the optimizer steps only under
    an `if` (of this loop body) that holds no backward: accumulation."""
    conditional = [n for n in ast.walk(loop) if isinstance(n, ast.If) and _optimizer_steps(n) and not _calls(n, "backward")]
    if not conditional:
        return []
    guarded = {id(c) for n in ast.walk(loop) if isinstance(n, ast.If) for c in _calls(n, "backward")}
    return [c for c in _calls(loop, "backward") if id(c) not in guarded]


def lint(index):
    """Static: a DDP model, a training loop that accumulates, and no no_sync() anywhere."""
    if not P.ddp_calls(index) or any(c.method == "no_sync" for c in index.calls) \
            or "require_backward_grad_sync" in index.text:
        return
    starts = {lp.line for lp in index.loops}
    for node in ast.walk(index.tree):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and node.lineno in starts:
            for b in _accumulating_backwards(node):
                yield Finding(
                    rule=ID, title=TITLE, path=index.path, line=b.lineno, end_line=b.end_lineno, severity="medium",
                    message="this backward runs every micro-batch while the optimizer steps only every few: DDP "
                            "all-reduces the gradients each time, though only the last all-reduce before a step "
                            "is used; run the others under `with model.no_sync():` (static: a suggestion, not "
                            "measured).",
                    fix=Fix(ID, None, "wrap the forward and backward of every micro-batch but the last in "
                                      "`with model.no_sync():`"),
                )


RULE = Rule(ID, TITLE, "distributed", static_detect(lint), __doc__, needs=("source",), lint=lint)
