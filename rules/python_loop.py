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

import libcst as cst
import numpy as np

from trainprof.estimate import Bound, Change, WhatIf
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.trace import measures as M

ID = "python-loop"
MIN_SHARE = 0.05  # of the step
MIN_ITERS = 4


def _inner_loops(index):
    """Loops nested in a training loop, or in a function called from one (`async for` aside),
    in source order."""
    spans = [(lp.line, lp.end_line) for lp in index.loops]
    spans += [index.functions[f] for f in index.loop_functions if f in index.functions]
    starts = {lp.line for lp in index.loops}
    loops = [n for n in index.nodes((cst.For, cst.While)) if not (isinstance(n, cst.For) and n.asynchronous)]
    for node in loops:
        line = index.line(node)  # (a training loop itself is not one)
        if line not in starts and any(a <= line and index.end_line(node) <= b for a, b in spans):
            yield node


def _names(index, node) -> set[str]:
    """The names node reads or binds (variables: not attributes, keywords, parameters)."""
    out = set()
    for n in index.walk(node):
        if isinstance(n, cst.Name) and n.value not in ("True", "False", "None"):
            p = index.parent(n)
            if not ((isinstance(p, cst.Attribute) and p.attr is n) or (isinstance(p, cst.Arg) and p.keyword is n)
                    or isinstance(p, cst.Param)):
                out.add(n.value)
    return out


def _recurrent(index, loop) -> str | None:
    """A name the body assigns from a call that takes it as an argument (h = cell(x, h)).
    `s = s + f(x)`, `s += ...` and `.append` are reductions: still vectorizable."""
    for node in (n for n in index.walk(loop) if isinstance(n, cst.Assign)):
        targets = set().union(*(_names(index, t.target) for t in node.targets))
        v = node.value
        if isinstance(v, cst.BinaryOperation) and isinstance(v.left, cst.Name) and v.left.value in targets:
            continue  # accumulation
        for call in (c for c in index.walk(v) if isinstance(c, cst.Call)):
            used = set().union(*(_names(index, a.value) for a in call.args))
            if used & targets:
                return min(used & targets)
    return None


def _backward_share(run, starts, ends, iters) -> tuple:
    """Backward-call intervals, shrunk by the share of the step's forward ops the loop issued."""
    if run.index is None:
        return ()
    tr = run.trace
    back_lines = {c.line for c in run.index.calls if c.method == "backward" and run.index.in_loop(c.line)}
    if not back_lines:
        return ()
    back = [iv for ln in back_lines for iv in run.line_time(run.script, ln)[0]]
    ops = M.top_level(tr, M.cpu_ops(tr) & run.main)
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


def detect(run):
    if run.index is None or run.lines is None or run.script is None:
        return
    n, tr = run.n_steps, run.trace
    for loop in _inner_loops(run.index):
        first = run.index.line(loop)
        rng = range(first, run.index.end_line(loop) + 1)
        body = [c for c in run.index.calls if c.line in rng and c.line != first]
        if not body or all(P.is_logging(c) for c in body):
            continue  # a loop of log calls: excessive-logging's
        intervals, header_hits, last = [], 0, None
        for a, b, sid in run.lines.spans:
            ln = run.lines.map.frame_in(sid, run.script, rng)
            if ln is None:
                last = None
                continue
            if ln == first and last != first:
                header_hits += 1
            last = ln
            if intervals and abs(intervals[-1][1] - a) < 1e-6:
                intervals[-1] = (intervals[-1][0], b)
            else:
                intervals.append((a, b))
        cost = sum(b - a for a, b in intervals) / n
        iters = max(header_hits / n - 1, 0)  # the header runs once more, to exit
        if cost < MIN_SHARE * run.step_us or iters < MIN_ITERS:
            continue
        starts, ends = np.array([a for a, _ in intervals]), np.array([b for _, b in intervals])
        li = run.launches.calls
        launches = li[M.within(tr.ts[li], starts, ends)]
        carried = _recurrent(run.index, loop)
        # Autograd replays the loop's ops backward, one small node per op: the backward
        # call shrinks by the loop's share of the forward ops.
        back = _backward_share(run, starts, ends, iters)
        header = run.index.line_text(first).strip()
        ms, base = run.cpu_ms(intervals), run.base_step_us / 1000  # unprofiled, as the step time
        kind = (f"carries `{carried}` from one iteration to the next (a recurrence)" if carried
                else "has independent iterations (or only sums over them)")
        what = WhatIf(
            Change(remove_cpu=tuple((a, b, 1.0 / max(iters, 1.0)) for a, b in intervals) + back),
            basis=(f"the loop's measured time on the training thread and the GPU work it launched, cut to one "
                   f"iteration's worth (1/{iters:.0f}), and the backward pass cut by the loop's share of the "
                   f"forward ops, replayed"
                   + ("; an upper bound: a recurrence cannot be vectorized, only fused" if carried else "")),
            confidence="low" if carried else "medium",
        )
        yield Finding(
            rule=ID,
            title="Python loop of small tensor ops in the step",
            path=run.relpath(),
            line=first,
            end_line=rng[-1],
            severity="medium",
            message=f"`{header[:60]}` runs {iters:.0f} iterations per step and holds the training thread "
                    f"{ms:.3g} ms per step ({100 * ms / base:.0f}% of the step, "
                    f"{len(launches) / n:.0f} kernel launches); the loop {kind}.",
            evidence=(
                Evidence("time per step in the loop", ms, "ms"),
                Evidence("time per step in the loop, profiled", cost / 1000, "ms"),
                Evidence("iterations per step", iters),
                Evidence("kernel launches per step", len(launches) / n),
                Evidence("recurrence", carried or "none"),
            ),
            saving=Bound(what) if carried else what,
            fix=Fix(ID, None, "fuse it: nn.LSTM/nn.GRU (cuDNN), torch.compile or CUDA graphs" if carried
                    else "vectorize: one call over the whole batch instead of one per element"),
        )


# -- static detection (`trainprof lint`) ------------------------------------------------
_NOT_TENSOR = {"append", "extend", "insert", "pop", "items", "keys", "values", "get", "update", "format", "join"}
_PLAIN = {"range", "len", "enumerate", "zip", "int", "float", "str", "min", "max", "abs", "isinstance", "list",
          "tuple", "dict", "sum", "print"}


def _positional(call: cst.Call) -> list:
    """A call's positional arguments, a `*x` one as None: no dimension."""
    return [None if a.star else a.value for a in call.args if a.keyword is None and a.star != "**"]


def _dim(e) -> bool:
    """`x.shape[i]`, `x.size(i)`, `x.size()[i]`, `len(x)`: a tensor dimension."""
    if isinstance(e, cst.Subscript):
        v = e.value
        return (isinstance(v, cst.Attribute) and v.attr.value == "shape") or (
            isinstance(v, cst.Call) and isinstance(v.func, cst.Attribute) and v.func.attr.value == "size")
    if isinstance(e, cst.Call):
        f = e.func
        return (isinstance(f, cst.Attribute) and f.attr.value == "size" and len(_positional(e)) == 1) or (
            isinstance(f, cst.Name) and f.value == "len" and len(_positional(e)) == 1)
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
        it = loop.iter if isinstance(loop, cst.For) else None
        if not (isinstance(it, cst.Call) and isinstance(it.func, cst.Name) and it.func.value == "range"):
            continue
        args = _positional(it)
        if not (1 <= len(args) <= 3 and _dim(args[0] if len(args) == 1 else args[1])):
            continue
        body = [site_of[id(n)] for n in index.walk(loop.body) if id(n) in site_of]
        line = index.line(loop)
        if not any(_tensor_op(c) for c in body) or P.throttled(index, line):
            continue  # (a loop in a block or helper that runs every N steps: not the step's cost)
        header = index.line_text(line)
        carried = _recurrent(index, loop)
        yield Finding(
            rule=ID, title="Python loop of small tensor ops in the step", path=index.path, line=line,
            end_line=index.end_line(loop), severity="medium",
            message=f"`{header[:60]}` runs tensor ops once per element, every step: a few small kernels per "
                    "iteration (static: suspected, not measured; `trainprof analyze` measures it).",
            fix=Fix(ID, None, "fuse it: nn.LSTM/nn.GRU (cuDNN), torch.compile or CUDA graphs" if carried
                    else "vectorize: one call over the whole batch instead of one per element"),
        )


RULE = Rule(ID, "Python loop of small tensor ops in the step", "compute", detect, __doc__,
            needs=("trace", "source", "lines"), lint=lint, aliases=('python-loop-kernels',))
