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
measures their transfer on every rank: that is what `no_sync()` saves. All of
it, also the part that overlaps the backward: an overlapped all-reduce still
takes the cores (gloo) or the SMs and memory bandwidth (NCCL) that the backward
needs. Time a rank spends waiting for a late peer
is not saved: under `no_sync()` it is waited once, at the last micro-batch.

## When not to fix
With k=1 (no accumulation) there is nothing to skip. Under `no_sync()` the
gradients pile up unreduced on each rank until the synced step, which costs no
extra memory for DDP's own buckets but does for code that reads `.grad` between
micro-steps (clipping every micro-step, logging gradient norms): those read
local, unreduced gradients.
"""

from __future__ import annotations

from dataclasses import replace

import libcst as cst
import numpy as np

from trainprof.estimate import Measured
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P
from trainprof.trace import comm as C

ID = "ddp-no-sync"
TITLE = "Gradient accumulation all-reduces every micro-batch (no model.no_sync())"
_NOT_OPTIMIZERS = ("sched", "lr", "warmup")


def _calls(index, node, method: str) -> list[cst.Call]:
    return [c for c in index.walk(node) if isinstance(c, cst.Call) and isinstance(c.func, cst.Attribute)
            and c.func.attr.value == method]


def _optimizer_steps(index, node) -> list[cst.Call]:
    return [c for c in _calls(index, node, "step")
            if not any(h in index.code(c.func.value).lower() for h in _NOT_OPTIMIZERS)]


def _accumulating_backwards(index, loop) -> list[cst.Call]:
    """The loop's backward calls that run every iteration while the optimizer steps only under
    an `if` (of this loop body) that holds no backward: accumulation."""
    ifs = [n for n in index.walk(loop) if isinstance(n, cst.If)]
    if not any(_optimizer_steps(index, n) and not _calls(index, n, "backward") for n in ifs):
        return []
    guarded = {id(c) for n in ifs for c in _calls(index, n, "backward")}
    return [c for c in _calls(index, loop, "backward") if id(c) not in guarded]


def lint(index):
    """Static: a DDP model, a training loop that accumulates, and no no_sync() anywhere."""
    if not P.ddp_calls(index) or any(c.method == "no_sync" for c in index.calls) \
            or "require_backward_grad_sync" in index.text:
        return
    for lp in index.loops:
        for b in _accumulating_backwards(index, lp.node):
            yield Finding(
                rule=ID, title=TITLE, path=index.path, line=index.line(b), end_line=index.end_line(b),
                severity="medium",
                message="this backward runs every micro-batch while the optimizer steps only every few: DDP "
                        "all-reduces the gradients each time, though only the last all-reduce before a step "
                        "is used; run the others under `with model.no_sync():` (static: a suggestion, not "
                        "measured).",
                fix=Fix(ID, None, "wrap the forward and backward of every micro-batch but the last in "
                                  "`with model.no_sync():`"),
            )


def _wasted(run) -> tuple[float, int, int] | None:
    """(µs per step that the all-reduces of every micro-batch but the last cost -- the least
    over the ranks; all-reduces per step; backward passes per step), or None where the trace
    cannot tell the micro-batches apart (no Python stacks, unmatched launches)."""
    x = run.cross_rank
    if x is None or not x.matched:
        return None
    per_rank = []
    for r, sel in zip(run.ranks, x.sel):
        rc, tr, n = r.comm, r.trace, max(r.n_steps, 1)
        bs, be = C.backward_spans(tr, r.steps)
        if not len(bs) or (rc.launch[sel] < 0).any():
            return None
        bw_step = C.step_of(r.steps, bs)
        last_bw = {int(k): int(np.flatnonzero(bw_step == k).max()) for k in np.unique(bw_step) if k >= 0}

        def early(t: np.ndarray) -> np.ndarray:
            """Which instants fall in a backward pass that is not its step's last."""
            b = np.searchsorted(bs, t, side="right") - 1
            return np.array([k >= 0 and u < be[k] and last_bw.get(int(bw_step[k]), k) != k
                             for k, u in zip(b.tolist(), t.tolist())], bool)

        mine = early(tr.ts[rc.launch[sel]])
        ends = rc.end[sel][mine]
        # All of the transfer, not just what no compute overlapped: an overlapped all-reduce
        # still takes what the compute needs -- the cores, for gloo's threads; SMs and memory
        # bandwidth, for NCCL's kernels (seen on 2 H200s: the backward's kernels took 19 ms a
        # step on the rank whose all-reduces overlapped them, 14 ms on the other, and no_sync()
        # saved about the whole transfer).
        cost = C.union_length(ends - x.transfer[mine], ends)
        if not tr.has_cuda:
            # On the CPU the reducer's own work in those passes (copying gradients into buckets
            # and back, launching the all-reduces) is compute that no_sync() skips too; on a GPU
            # it is CPU time that runs ahead of the kernels, hidden.
            ops = np.flatnonzero((tr.pid == r.steps.pid) & tr.cat_mask("cpu_op") & tr.name_mask(_reducer_op))
            cost += float(tr.dur[ops[early(tr.ts[ops])]].sum()) if len(ops) else 0.0
        per_rank.append((cost / n, len(sel) / n, len(bs) / n))
    return min(p[0] for p in per_rank), round(per_rank[0][1]), round(per_rank[0][2])


def _reducer_op(name: str) -> bool:
    return "reducer::" in name or (name.startswith("c10d::") and C.is_launch(name))


def detect(run):
    statics = list(static_detect(lint)(run))
    m = _wasted(run) if statics else None
    if m is None:
        yield from statics
        return
    saved_us, n_ar, n_bw = m
    if n_bw < 2:  # one backward per step in this run: nothing to accumulate over
        return
    saving = run.unprofiled_ms(saved_us)
    for f in statics:
        yield replace(
            f,
            message=(f"{n_bw} backward passes per optimizer step, each all-reducing the gradients ({n_ar} "
                     f"all-reduces per step): only the last is needed. The earlier ones cost "
                     f"{saved_us / 1000:.3g} ms per step of transfer; run them under "
                     "`with model.no_sync():`."),
            evidence=(Evidence("backward passes per step", n_bw), Evidence("all-reduces per step", n_ar),
                      Evidence("all-reduce transfer before the last micro-batch", saved_us / 1000, "ms per step")),
            saving=Measured(
                saving,
                basis="the all-reduce transfer (each collective's shortest duration across the ranks) of "
                      "every micro-batch but the last, all of it (an overlapped transfer still takes the cores, "
                      "or the GPU's SMs and memory bandwidth, that the compute needs)"
                      + (", plus the reducer's ops in those backward passes (bucket copies, all-reduce launches)"
                         if not run.trace.has_cuda else "") +
                      "; least over the ranks; waits for a late rank are not counted, as no_sync only moves them",
                confidence="medium"))


RULE = Rule(ID, TITLE, "distributed", detect, __doc__, needs=("source",), lint=lint)
