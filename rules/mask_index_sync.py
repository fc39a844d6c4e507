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

import libcst as cst
from libcst.metadata import ExpressionContext, ExpressionContextProvider

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.source.tree import constant, positional

ID = "mask-index-sync"
TITLE = "Data-dependent shape in the training loop (hidden sync)"

_QUALNAMES = {"torch.nonzero", "torch.unique", "torch.unique_consecutive", "torch.masked_select", "torch.argwhere"}
_METHODS = {"nonzero", "unique", "unique_consecutive", "masked_select", "argwhere"}
_CMP = (cst.GreaterThan, cst.GreaterThanEqual, cst.LessThan, cst.LessThanEqual, cst.Equal, cst.NotEqual)


def _is_mask_expr(node, masks: set[str]) -> bool:
    """A boolean tensor expression: a comparison, `.bool()`, `~m`, `a & b`, or a name assigned from one."""
    if isinstance(node, cst.Comparison):
        return all(isinstance(t.operator, _CMP) for t in node.comparisons)
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
            and node.func.attr.value in ("bool", "isnan", "isinf", "isfinite", "logical_not"):
        return not positional(node)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.BitInvert):
        return _is_mask_expr(node.expression, masks)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.BitAnd, cst.BitOr, cst.BitXor)):
        return _is_mask_expr(node.left, masks) or _is_mask_expr(node.right, masks)
    return isinstance(node, cst.Name) and node.value in masks


def _mask_names(index) -> set[str]:
    """Names assigned (anywhere) only from mask expressions."""
    masks: set[str] = set()
    other: set[str] = set()
    assigns = index.nodes(cst.Assign)
    for _ in range(3):  # masks built from masks
        for a in assigns:
            for t in a.targets:
                if isinstance(t.target, cst.Name):
                    (masks if _is_mask_expr(a.value, masks) else other).add(t.target.value)
    return masks - other


def _index_parts(node: cst.Subscript) -> list:
    """The index of a subscript: `x[a, b]` (or `x[(a, b)]`) -> [a, b], `x[a]` -> [a]
    (`*a` and slices as None: no mask)."""
    parts = [e.slice.value if isinstance(e.slice, cst.Index) and not e.slice.star else None for e in node.slice]
    if len(parts) == 1 and not isinstance(node.slice[0].comma, cst.Comma) and isinstance(parts[0], cst.Tuple):
        parts = [None if isinstance(e, cst.StarredElement) else e.value for e in parts[0].elements]
    return parts


def _sites(index) -> dict[int, str]:
    """line -> what the data-dependent-shape operation there is."""
    out: dict[int, str] = {}

    def add(line: int, what: str) -> None:
        out.setdefault(line, what)

    for c in index.calls:
        q = c.qualname or ""
        args = positional(c.node)
        if q in _QUALNAMES:
            add(c.line, f"`{q}`")
        elif q == "torch.where" and len(args) == 1 and len(c.node.args) == 1:
            add(c.line, "one-argument `torch.where`")
        elif c.qualname is None and c.method in _METHODS and c.receiver:
            add(c.line, f"`.{c.method}()`")
        elif c.qualname is None and c.method == "repeat_interleave" and c.receiver and args \
                and (args[0].star or not constant(args[0].value)):
            add(c.line, "`.repeat_interleave()` with tensor repeats")
    masks = _mask_names(index)
    ctx = index.wrapper.resolve(ExpressionContextProvider)
    for node in index.nodes(cst.Subscript):
        if ctx.get(node) is ExpressionContext.LOAD and any(_is_mask_expr(p, masks) for p in _index_parts(node)):
            add(index.line(node), "boolean-mask indexing")
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


def detect(run):
    if not run.trace.has_cuda or not run.syncs.shape_ops:
        return
    tr, n = run.trace, run.n_steps
    sites = _loop_sites(run.index) if run.index is not None else {}
    shape_of = {s.idx: s.shape_op for s in run.syncs.events}
    for line, (idxs, blocked, gpu) in run.syncs.shape_ops.items():
        ops = sorted({shape_of[i] for i in idxs})
        what = sites.get(line) or f"`{tr.name(ops[0])}`"
        cpu = sum(float(tr.dur[o]) for o in ops) / n / 1000
        yield Finding(
            rule=ID, title=TITLE, path=run.relpath(),
            line=line if line is not None else (run.index.loops[0].line if run.index and run.index.loops else 1),
            severity="medium",
            message=f"{what} needs the output size from the GPU: the CPU waits {len(idxs) / n:.3g}x per step "
                    f"({blocked:.3g} ms blocked per step; {cpu:.3g} ms per step in the ops around the waits).",
            evidence=(
                Evidence("syncs per step", len(idxs) / n),
                Evidence("CPU blocked per step", blocked, "ms"),
                Evidence("CPU time of the data-dependent ops per step", cpu, "ms"),
            ),
            saving=WhatIf(
                Change(remove_cpu=tuple((float(tr.ts[o]), float(tr.end[o])) for o in ops),
                       drop_syncs=frozenset(idxs), drop_gpu=frozenset(gpu)),
                basis=f"{len(idxs)} sync waits at this line over {n} steps, and the CPU time of the "
                      f"{len(ops)} ops that held them (a fixed-shape rewrite masks with elementwise ops instead), "
                      "replayed away",
                confidence="medium",
            ),
        )


RULE = Rule(ID, TITLE, "sync", detect, __doc__, needs=("trace", "cuda"), lint=lint)
