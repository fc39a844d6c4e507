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

In a distributed run trainprof counts the all-reduces of every micro-batch and
measures the part of their transfer that the backward did not hide, on every
rank: that is what `no_sync()` saves. Time a rank spends waiting for a late peer
is not saved: under `no_sync()` it is waited once, at the last micro-batch.

## When not to fix
With k=1 (no accumulation) there is nothing to skip. Under `no_sync()` the
gradients pile up unreduced on each rank until the synced step, which costs no
extra memory for DDP's own buckets but does for code that reads `.grad` between
micro-steps (clipping every micro-step, logging gradient norms): those read
local, unreduced gradients.
"""

from __future__ import annotations

import ast
from dataclasses import replace

import numpy as np

from trainprof.estimate import severity
from trainprof.finding import Estimate, Evidence, Finding, Fix
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P
from trainprof.trace import comm as C

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


def _wasted(ctx) -> tuple[float, int, int] | None:
    """(µs per step of all-reduce transfer that no backward hid, in micro-batches but the last
    of each step -- the least over the ranks; all-reduces per step; backward passes per step)."""
    x = ctx.cross_rank
    if x is None or not x.matched:
        return None
    per_rank = []
    for r, sel in zip(ctx.ranks, x.sel):
        rc = r.comm
        bs, be = C.backward_spans(r.trace, r.steps)
        if not len(bs) or (rc.launch[sel] < 0).any():
            return None
        t_launch = r.trace.ts[rc.launch[sel]]
        which = np.searchsorted(bs, t_launch, side="right") - 1  # the backward each was launched in
        step_of_bw = C._step_of(r.steps, bs)
        last_bw = {int(n): int(np.flatnonzero(step_of_bw == n).max()) for n in np.unique(step_of_bw) if n >= 0}
        early = np.array([w >= 0 and last_bw.get(int(n), w) != w for w, n in zip(which, x.keys[:, 0])], bool)
        ends = rc.end[sel][early]
        if _cores_shared(ctx):  # the transfer's own CPU time is what the rank loses
            cost = C.union_length(ends - x.transfer[early], ends)
        else:
            cost = C.exposed(rc, ends - x.transfer[early], ends)
        # On the CPU, the reducer's own work in those backward passes (copying gradients into
        # buckets and back, launching the all-reduces) is compute no_sync() skips too; on a GPU
        # it is CPU time that runs ahead of the kernels, hidden.
        tr = r.trace
        if tr.has_cuda:
            per_rank.append((cost / max(r.n_steps, 1), len(sel) / max(r.n_steps, 1), len(bs) / max(r.n_steps, 1)))
            continue
        ops = np.flatnonzero((tr.pid == r.steps.pid) & tr.cat_mask("cpu_op") & tr.name_mask(_reducer_op))
        at = np.searchsorted(bs, tr.ts[ops], side="right") - 1
        in_early = np.array([a >= 0 and tr.ts[o] < be[a] and last_bw.get(int(step_of_bw[a]), a) != a
                             for o, a in zip(ops.tolist(), at.tolist())], bool)
        cost += float(tr.dur[ops[in_early]].sum()) if len(ops) else 0.0
        per_rank.append((cost / max(r.n_steps, 1), len(sel) / max(r.n_steps, 1), len(bs) / max(r.n_steps, 1)))
    saved = min(p[0] for p in per_rank)
    return saved, round(per_rank[0][1]), round(per_rank[0][2])


def _reducer_op(name: str) -> bool:
    return "reducer::" in name or (name.startswith("c10d::") and C._is_launch(name))


def _cores_shared(ctx) -> bool:
    """gloo moves CPU tensors with CPU threads: where the host has fewer than two cores per
    rank, a transfer 'hidden' behind compute still takes the cores that compute needs (seen on
    a 2-core host: the hidden part of the all-reduces cost as much as the exposed part)."""
    return not ctx.trace.has_cuda and (ctx.run.get("cpu_count") or 0) < 2 * len(ctx.ranks)


def detect(ctx):
    statics = list(static_detect(lint)(ctx))
    m = _wasted(ctx) if statics else None
    if m is None:
        yield from statics
        return
    saved_us, n_ar, n_bw = m
    if n_bw < 2:  # one backward per step in this run: nothing to accumulate over
        return
    saving = ctx.unprofiled_ms(saved_us)
    base = ctx.base_step_us / 1000
    for f in statics:
        yield replace(
            f, severity=severity(saving / base if base else 0.0),
            message=(f"{n_bw} backward passes per optimizer step, each all-reducing the gradients ({n_ar} "
                     f"all-reduces per step): only the last is needed. The earlier ones cost "
                     f"{saved_us / 1000:.3g} ms per step of transfer; run them under "
                     "`with model.no_sync():`."),
            evidence=(Evidence("backward passes per step", n_bw), Evidence("all-reduces per step", n_ar),
                      Evidence("unhidden transfer before the last micro-batch", saved_us / 1000, "ms per step")),
            estimate=Estimate(
                saving_ms=saving, speedup=base / (base - saving) if base > saving else 1.0,
                basis="the all-reduce transfer (each collective's shortest duration across the ranks) of "
                      "every micro-batch but the last" + (
                          ", all of it: gloo's threads share the host's cores with the compute"
                          if _cores_shared(ctx) else ", where no compute on the rank overlapped it")
                      + (", plus the reducer's ops in those backward passes (bucket copies, all-reduce launches)"
                         if not ctx.trace.has_cuda else "") + "; "
                      "least over the ranks; waits for a late rank are not counted, as no_sync only moves them",
                confidence="medium"))


RULE = Rule(ID, TITLE, "distributed", detect, __doc__, needs=("source",), lint=lint)
