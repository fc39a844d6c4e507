"""DistributedDataParallel's gradient buckets: copies, and buckets too small.

## What it does
Flags a DDP model built without `gradient_as_bucket_view=True`, or with a
`bucket_cap_mb` under 5 MB.

## Why it is slow
DDP all-reduces gradients in buckets (25 MB by default). Without
`gradient_as_bucket_view=True`, each parameter's `.grad` is a tensor of its own
that DDP copies into the bucket before the all-reduce and back out after it:
two extra passes over every gradient each step, and a second copy of all the
gradients in GPU memory. With it, `.grad` is a view into the bucket. Buckets
that are very small turn one all-reduce into many: each pays the collective's
latency, and the GPU's copy and launch overheads add up.

## Example
```python
model = DDP(net, device_ids=[rank], bucket_cap_mb=1)
```

## Use instead
```python
model = DDP(net, device_ids=[rank], gradient_as_bucket_view=True)   # bucket_cap_mb: the default 25
```

In a run, trainprof measures the copies back (DDP's `copy_bucket_to_grad`: the
training thread's time for CPU tensors, the copy kernels on a GPU) and replays
the step without them.

## When not to fix
`gradient_as_bucket_view=True` makes `.grad` a view: code that replaces
`p.grad` with another tensor, or calls `p.grad.detach_()`/`requires_grad_()`,
no longer works. Small buckets can pay off on slow interconnects, where starting
the first all-reduce early matters more than the count; measure both. Advice
only, as the right bucket size depends on the model and the network.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P
from trainprof.trace import measures as M

ID = "ddp-buckets"
TITLE = "DDP gradient buckets: copied, or too small"
SMALL_MB = 5


def lint(index):
    """Static: DDP without gradient_as_bucket_view=True (silent where it is not a literal), or
    with a literal bucket_cap_mb under SMALL_MB."""
    for c in P.ddp_calls(index):
        view = c.keywords.get("gradient_as_bucket_view", False)
        cap = c.keywords.get("bucket_cap_mb")
        why = []
        if view is False:
            why.append("without gradient_as_bucket_view=True every gradient is copied into its bucket and "
                       "back each step, and held twice in memory")
        if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap < SMALL_MB:
            why.append(f"bucket_cap_mb={cap} splits the gradients into many small all-reduces, each paying "
                       "the collective's latency")
        if why:
            yield Finding(
                rule=ID, title=TITLE, path=index.path, line=c.line, end_line=c.end_line, severity="low",
                message=f"`{c.text[:60]}`: " + "; ".join(why) + " (static: a suggestion, not measured).",
                fix=Fix(ID, None, "DDP(..., gradient_as_bucket_view=True) and the default 25 MB buckets, unless "
                                  "the code replaces p.grad"),
            )


def _copy_back(run) -> Change | None:
    """What the reducer's copies of the buckets back into the gradients cost, as a change: on
    the training thread (CPU tensors) its time; on autograd's threads (CUDA) the copy kernels
    they launched."""
    tr = run.trace
    lo, hi = run.steps.window
    ops = np.flatnonzero((tr.pid == run.steps.pid) & tr.cat_mask("cpu_op") & (tr.ts >= lo) & (tr.ts < hi)
                         & tr.name_mask(lambda n: n.endswith("reducer::copy_bucket_to_grad")))
    if not len(ops):
        return None
    main = ops[tr.tid[ops] == run.steps.tid]
    other = ops[tr.tid[ops] != run.steps.tid]
    gpu: set[int] = set()
    if len(other):
        by_corr = M.gpu_by_correlation(tr)
        rt = np.flatnonzero(M.runtime_mask(tr) & (tr.corr >= 0))
        for i in other.tolist():
            inside = rt[(tr.tid[rt] == tr.tid[i]) & (tr.ts[rt] >= tr.ts[i]) & (tr.ts[rt] < tr.end[i])]
            gpu.update(g for c in tr.corr[inside].tolist() for g in by_corr.get(c, []))
    return Change(remove_cpu=tuple((float(tr.ts[i]), float(tr.end[i])) for i in main), drop_gpu=frozenset(gpu))


def detect(run):
    found = list(static_detect(lint)(run))
    copies = _copy_back(run) if any("gradient_as_bucket_view" in f.message for f in found) else None
    for f in found:
        change = copies if "gradient_as_bucket_view" in f.message else None
        if change is None:
            yield f
            continue
        cpu_ms = sum(b - a for a, b in change.remove_cpu) / max(run.n_steps, 1) / 1000
        gpu_ms = sum(float(run.trace.dur[g]) for g in change.drop_gpu) / max(run.n_steps, 1) / 1000
        yield replace(
            f, message=f.message.replace(" (static: a suggestion, not measured).",
                                         f"; the copies back take {cpu_ms + gpu_ms:.3g} ms per step here."),
            evidence=(Evidence("copy back to .grad per step, CPU", cpu_ms, "ms"),
                      Evidence("copy back to .grad per step, GPU kernels", gpu_ms, "ms")),
            saving=WhatIf(change, basis="the reducer's copies of the all-reduced buckets back into the gradients "
                                        "(its copy_bucket_to_grad ops, and the kernels they launched), removed in "
                                        "the replay: with gradient_as_bucket_view=True the gradients are the buckets",
                          confidence="medium"))


RULE = Rule(ID, TITLE, "distributed", detect, __doc__, needs=("source",), lint=lint)
