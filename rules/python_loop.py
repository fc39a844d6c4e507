"""A Python loop inside the training step runs tensor ops once per element (per sample, per time step).

## What it does
Finds `for`/`while` loops nested in the training loop (or in functions it calls)
whose body runs torch ops, measures the training thread's time in them per step
and how many iterations they make, and says whether the loop can be vectorized
(each iteration independent, or only accumulating a sum) or carries state from one
iteration to the next (a recurrence).

## Why it is slow
Each iteration issues the same few ops on a sliver of the data: the cost is the
Python and dispatcher overhead plus one kernel launch per op (5-10 us each on the
CPU side), not the arithmetic. A GPU waits between those tiny kernels. One call on
the whole batch costs about what one iteration does.

## Example
```python
loss = 0
for i in range(x.shape[0]):
    loss = loss + crit(out[i:i + 1], y[i:i + 1])
```

## Use instead
```python
loss = crit(out, y) * x.shape[0]     # one vectorized call (mind the reduction)
```
For a recurrence (`h = cell(x[t], h)`): a fused module (`nn.LSTM`, `nn.GRU` run
cuDNN's kernels), `torch.compile`, or CUDA graphs.

## When not to fix
When the loop is short and cheap (the estimate says so), or each iteration does
large work (long kernels): then the loop's overhead is hidden behind the GPU.
"""

from __future__ import annotations

import ast

import numpy as np

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.trace import measures as M

ID = "python-loop"
MIN_SHARE = 0.05  # of the step
MIN_ITERS = 4


def _inner_loops(index):
    """Loops nested in a training loop, or in a function called from one."""
    spans = [(lp.line, lp.end_line) for lp in index.loops]
    spans += [index.functions[f] for f in index.loop_functions if f in index.functions]
    seen = set()
    for node in ast.walk(index.tree):
        if not isinstance(node, (ast.For, ast.While)):
            continue
        if any(lp.line == node.lineno for lp in index.loops):
            continue  # the training loop itself
        if any(a <= node.lineno and node.end_lineno <= b for a, b in spans) and node.lineno not in seen:
            seen.add(node.lineno)
            yield node


def _recurrent(loop: ast.AST) -> str | None:
    """A name the body assigns from a call that takes it as an argument (h = cell(x, h)).
    `s = s + f(x)`, `s += ...` and `.append` are reductions: still vectorizable."""
    for node in ast.walk(loop):
        if not isinstance(node, ast.Assign):
            continue
        targets = {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        v = node.value
        if isinstance(v, ast.BinOp) and isinstance(v.left, ast.Name) and v.left.id in targets:
            continue  # accumulation
        for call in (c for c in ast.walk(v) if isinstance(c, ast.Call)):
            used = {n.id for a in list(call.args) + [k.value for k in call.keywords] for n in ast.walk(a)
                    if isinstance(n, ast.Name)}
            if used & targets:
                return sorted(used & targets)[0]
    return None


def _backward_share(ctx, starts, ends, iters) -> tuple:
    """Backward-call intervals, shrunk by the share of the step's forward ops the loop issued."""
    if ctx.index is None:
        return ()
    tr = ctx.trace
    back_lines = {c.line for c in ctx.index.calls if c.method == "backward" and ctx.index.in_loop(c.line)}
    if not back_lines:
        return ()
    back = [iv for ln in back_lines for iv in ctx.line_time(ctx.script, ln)[0]]
    ops = M.top_level(tr, M.cpu_ops(tr) & ctx.main)
    t = tr.ts[ops]
    in_loop = M.within(t, starts, ends)
    bs, be = M.merge(np.array([a for a, _ in back]), np.array([b for _, b in back]))
    in_back = M.within(t, bs, be)
    fwd = (~in_back).sum()
    share = float(in_loop.sum()) / fwd if fwd else 0.0
    cut = share * (1.0 - 1.0 / max(iters, 1.0))
    if cut <= 0:
        return ()
    return tuple((a, b, 1.0 - cut) for a, b in back)


def detect(ctx):
    if ctx.index is None or ctx.lines is None or ctx.script is None:
        return
    n, tr = ctx.n_steps, ctx.trace
    for loop in _inner_loops(ctx.index):
        rng = range(loop.lineno, (loop.end_lineno or loop.lineno) + 1)
        body = [c for c in ctx.index.calls if c.line in rng and c.line != loop.lineno]
        if not body or all(P.is_logging(c) for c in body):
            continue  # a loop of log calls: excessive-logging's
        intervals, header_hits, last = [], 0, None
        for a, b, sid in ctx.line_spans:
            ln = ctx.lines.frame_in(sid, ctx.script, rng)
            if ln is None:
                last = None
                continue
            if ln == loop.lineno and last != loop.lineno:
                header_hits += 1
            last = ln
            if intervals and abs(intervals[-1][1] - a) < 1e-6:
                intervals[-1] = (intervals[-1][0], b)
            else:
                intervals.append((a, b))
        cost = sum(b - a for a, b in intervals) / n
        iters = max(header_hits / n - 1, 0)  # the header runs once more, to exit
        if cost < MIN_SHARE * ctx.step_us or iters < MIN_ITERS:
            continue
        starts, ends = np.array([a for a, _ in intervals]), np.array([b for _, b in intervals])
        li = np.array(list(ctx.timeline.launch_gpu), dtype=np.int64)
        launches = li[M.within(tr.ts[li], starts, ends)]
        carried = _recurrent(loop)
        # Autograd replays the loop's ops backward, one small node per op: the backward
        # call shrinks by the loop's share of the forward ops.
        back = _backward_share(ctx, starts, ends, iters)
        header = ctx.index.line_text(loop.lineno).strip()
        kind = (f"carries `{carried}` from one iteration to the next (a recurrence)" if carried
                else "has independent iterations (or only sums over them)")
        yield Finding(
            rule=ID,
            title="Python loop of small tensor ops in the step",
            path=ctx.relpath(),
            line=loop.lineno,
            end_line=loop.end_lineno,
            severity="medium",
            message=f"`{header[:60]}` runs {iters:.0f} iterations per step and holds the training thread "
                    f"{cost / 1000:.3g} ms per step ({100 * cost / ctx.step_us:.0f}% of the step, "
                    f"{len(launches) / n:.0f} kernel launches); the loop {kind}.",
            evidence=(
                Evidence("time per step in the loop", cost / 1000, "ms"),
                Evidence("iterations per step", iters),
                Evidence("kernel launches per step", len(launches) / n),
                Evidence("recurrence", carried or "none"),
            ),
            change=WhatIf(
                Change(remove_cpu=tuple((a, b, 1.0 / max(iters, 1.0)) for a, b in intervals) + back),
                basis=(f"the loop's measured time on the training thread and the GPU work it launched, cut to one "
                       f"iteration's worth (1/{iters:.0f}), and the backward pass cut by the loop's share of the "
                       f"forward ops, replayed"
                       + ("; an upper bound: a recurrence cannot be vectorized, only fused" if carried else "")),
                bound=bool(carried),
                confidence="low" if carried else "medium",
            ),
            fix=Fix(ID, None, "fuse it: nn.LSTM/nn.GRU (cuDNN), torch.compile or CUDA graphs" if carried
                    else "vectorize: one call over the whole batch instead of one per element"),
        )


# -- static detection (`trainprof lint`) ------------------------------------------------
_NOT_TENSOR = {"append", "extend", "insert", "pop", "items", "keys", "values", "get", "update", "format", "join"}
_PLAIN = {"range", "len", "enumerate", "zip", "int", "float", "str", "min", "max", "abs", "isinstance", "list",
          "tuple", "dict", "sum", "print"}


def _dim(e) -> bool:
    """`x.shape[i]`, `x.size(i)`, `x.size()[i]`, `len(x)`: a tensor dimension."""
    if isinstance(e, ast.Subscript):
        v = e.value
        return (isinstance(v, ast.Attribute) and v.attr == "shape") or (
            isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr == "size")
    if isinstance(e, ast.Call):
        f = e.func
        return (isinstance(f, ast.Attribute) and f.attr == "size" and len(e.args) == 1) or (
            isinstance(f, ast.Name) and f.id == "len" and len(e.args) == 1)
    return False


def _tensor_op(c) -> bool:
    q = c.qualname
    if q is not None:
        return q.startswith("torch.") or (q.split(".")[0] not in _PLAIN and not P.is_logging(c))
    return c.method not in _NOT_TENSOR and not P.is_logging(c)


def lint(index):
    """Static: a Python loop over a tensor's dimension (one element per iteration) in the step."""
    site_of = {id(c.node): c for c in index.calls}
    for loop in _inner_loops(index):
        it = loop.iter if isinstance(loop, ast.For) else None
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and 1 <= len(it.args) <= 3 and _dim(it.args[0] if len(it.args) == 1 else it.args[1])):
            continue
        body = [site_of[id(n)] for s in loop.body for n in ast.walk(s) if id(n) in site_of]
        if not any(_tensor_op(c) for c in body):
            continue
        header = index.line_text(loop.lineno)
        carried = _recurrent(loop)
        yield Finding(
            rule=ID, title="Python loop of small tensor ops in the step", path=index.path, line=loop.lineno,
            end_line=loop.end_lineno, severity="medium",
            message=f"`{header[:60]}` runs tensor ops once per element, every step: a few small kernels per "
                    "iteration (static: suspected, not measured; `trainprof analyze` measures it).",
            fix=Fix(ID, None, "fuse it: nn.LSTM/nn.GRU (cuDNN), torch.compile or CUDA graphs" if carried
                    else "vectorize: one call over the whole batch instead of one per element"),
        )


RULE = Rule(ID, "Python loop of small tensor ops in the step", "compute", detect, __doc__,
            needs=("trace", "source", "lines"), lint=lint, aliases=('python-loop-kernels',))
