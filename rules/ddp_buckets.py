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

## When not to fix
`gradient_as_bucket_view=True` makes `.grad` a view: code that replaces
`p.grad` with another tensor, or calls `p.grad.detach_()`/`requires_grad_()`,
no longer works. Small buckets can pay off on slow interconnects, where starting
the first all-reduce early matters more than the count; measure both. Advice
only, as the right bucket size depends on the model and the network.
"""

from __future__ import annotations

from trainprof.finding import Finding, Fix
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P

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


RULE = Rule(ID, TITLE, "distributed", static_detect(lint), __doc__, needs=("source",), lint=lint)
