"""Data-dependent shapes in the training loop: boolean-mask indexing, `.nonzero()`, `torch.unique`, `torch.masked_select`, one-argument `torch.where`, `.repeat_interleave(tensor)`.

## What it does
Finds the lines of the training loop whose output size depends on the values of a
GPU tensor, and (from a trace) measures how long the CPU waits for the GPU there.

## Why it is slow
To allocate the output of `x[mask]`, `x.nonzero()` or `torch.unique(x)` the CPU must
know how many elements it will have, and that number is computed on the GPU. So the
CPU copies the count back and waits until every kernel queued before it has finished:
a hidden GPU->CPU sync, every step, that stops the CPU from running ahead.

## Example
```python
for x, y in loader:
    out = model(x)
    valid = y >= 0
    loss = loss_fn(out[valid], y[valid])   # two syncs: the mask's count
    loss.backward(); opt.step(); opt.zero_grad()
```

## Use instead
```python
for x, y in loader:
    out = model(x)
    loss = loss_fn(out, y.clamp(min=0), reduction="none")
    loss = (loss * (y >= 0)).sum() / (y >= 0).sum().clamp(min=1)   # fixed shapes
    loss.backward(); opt.step(); opt.zero_grad()
```
Or `torch.where(cond, a, b)` (three arguments: no sync), `ignore_index=` in the loss,
`torch.unique(..., size=N)` style fixed-size outputs where an API offers them.

## When not to fix
When the selected subset is much smaller than the whole and later work on it is
heavy (sparse routing, detection heads): compacting may win over masking. When the
step is CPU-bound anyway, the GPU is already idle at the sync and the estimate says
removing it gains ~0. A mask on a CPU tensor is not a sync.
"""

from __future__ import annotations

import ast

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding
from trainprof.rule import Rule
from trainprof.source import patterns as P

ID = "mask-index-sync"
TITLE = "Data-dependent shape in the training loop (hidden sync)"

_QUALNAMES = {"torch.nonzero", "torch.unique", "torch.unique_consecutive", "torch.masked_select", "torch.argwhere"}
_METHODS = {"nonzero", "unique", "unique_consecutive", "masked_select", "argwhere"}
_CMP = (ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq)


def _is_mask_expr(node: ast.AST, masks: set[str]) -> bool:
    """A boolean tensor expression: a comparison, `.bool()`, `~m`, `a & b`, or a name assigned from one."""
    if isinstance(node, ast.Compare):
        return all(isinstance(op, _CMP) for op in node.ops)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("bool", "isnan", "isinf",
                                                                                                "isfinite", "logical_not"):
        return not node.args
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
        return _is_mask_expr(node.operand, masks)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
        return _is_mask_expr(node.left, masks) or _is_mask_expr(node.right, masks)
    return isinstance(node, ast.Name) and node.id in masks


def _mask_names(tree: ast.AST) -> set[str]:
    """Names assigned (anywhere) only from mask expressions."""
    masks: set[str] = set()
    other: set[str] = set()
    assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]
    for _ in range(3):  # masks built from masks
        for a in assigns:
            for t in a.targets:
                if isinstance(t, ast.Name):
                    (masks if _is_mask_expr(a.value, masks) else other).add(t.id)
    return masks - other


def _sites(index) -> dict[int, str]:
    """line -> what the data-dependent-shape operation there is."""
    out: dict[int, str] = {}

    def add(line: int, what: str) -> None:
        out.setdefault(line, what)

    for c in index.calls:
        q = c.qualname or ""
        if q in _QUALNAMES:
            add(c.line, f"`{q}`")
        elif q == "torch.where" and len(c.node.args) == 1 and not c.node.keywords:
            add(c.line, "one-argument `torch.where`")
        elif c.qualname is None and c.method in _METHODS and c.receiver:
            add(c.line, f"`.{c.method}()`")
        elif c.qualname is None and c.method == "repeat_interleave" and c.receiver and c.node.args \
                and not isinstance(c.node.args[0], ast.Constant):
            add(c.line, "`.repeat_interleave()` with tensor repeats")
    masks = _mask_names(index.tree)
    for node in ast.walk(index.tree):
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            sl = node.slice
            parts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
            if any(_is_mask_expr(p, masks) for p in parts):
                add(node.lineno, "boolean-mask indexing")
    return out


def _loop_sites(index) -> dict[int, str]:
    return {ln: w for ln, w in _sites(index).items() if index.in_loop(ln) and not P.throttled(index, ln)}


def lint(index):
    """Static: an operation whose output size depends on GPU values, every step."""
    for line, what in sorted(_loop_sites(index).items()):
        yield Finding(
            rule=ID, title=TITLE, path=index.path, line=line, severity="medium",
            message=f"{what} gives an output whose size depends on the tensor's values: if it is on the GPU, "
                    "the CPU waits for the GPU here every step (static: suspected, not measured; "
                    "`trainprof analyze` measures the wait).",
        )


def detect(ctx):
    if not ctx.trace.has_cuda or not ctx.shape_sync_waits:
        return
    tr, n = ctx.trace, ctx.n_steps
    sites = _loop_sites(ctx.index) if ctx.index is not None else {}
    shape_of = {s.idx: s.shape_op for s in ctx.syncs}
    for line, (idxs, blocked, gpu) in ctx.shape_sync_waits.items():
        ops = sorted({shape_of[i] for i in idxs})
        what = sites.get(line) or f"`{tr.name(ops[0])}`"
        cpu = sum(float(tr.dur[o]) for o in ops) / n / 1000
        yield Finding(
            rule=ID, title=TITLE, path=ctx.relpath(),
            line=line if line is not None else (ctx.index.loops[0].line if ctx.index and ctx.index.loops else 1),
            severity="medium",
            message=f"{what} needs the output size from the GPU: the CPU waits {len(idxs) / n:.3g}x per step "
                    f"({blocked:.3g} ms blocked per step; {cpu:.3g} ms per step in the ops around the waits).",
            evidence=(
                Evidence("syncs per step", len(idxs) / n),
                Evidence("CPU blocked per step", blocked, "ms"),
                Evidence("CPU time of the data-dependent ops per step", cpu, "ms"),
            ),
            change=WhatIf(
                Change(remove_cpu=tuple((float(tr.ts[o]), float(tr.end[o])) for o in ops),
                       drop_syncs=frozenset(idxs), drop_gpu=frozenset(gpu)),
                basis=f"{len(idxs)} sync waits at this line over {n} steps, and the CPU time of the "
                      f"{len(ops)} ops that held them (a fixed-shape rewrite masks with elementwise ops instead), "
                      "replayed away",
                confidence="medium",
            ),
        )


RULE = Rule(ID, TITLE, "sync", detect, __doc__, needs=("trace", "cuda"), lint=lint)
