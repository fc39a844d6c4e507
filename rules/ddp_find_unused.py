"""DistributedDataParallel with `find_unused_parameters=True`.

## What it does
Flags a DDP model built with `find_unused_parameters=True`.

## Why it is slow
With the flag set, DDP walks the autograd graph from the outputs after every
forward pass to find the parameters that will get no gradient, and marks them
ready at once. That walk costs CPU time each step, proportional to the graph's
size. It also keeps DDP from starting a bucket's all-reduce until it knows the
bucket is complete, so less communication overlaps the backward. When every
parameter gets a gradient every step, all of that is wasted.

## Example
```python
model = DDP(net, device_ids=[rank], find_unused_parameters=True)
```

## Use instead
```python
model = DDP(net, device_ids=[rank])   # find_unused_parameters=False, the default
```

In a run, trainprof measures that walk (the reducer's `search_unused_parameters`
op after each forward), and the what-if replay removes it: a GPU-bound step
hides it, a CPU-bound one pays it.

## When not to fix
When some parameters really are unused in some steps (a branch taken only
sometimes, a frozen head, multi-task models): DDP then raises "Expected to have
finished reduction in the prior iteration" without the flag. Setting
`TORCH_DISTRIBUTED_DEBUG=INFO` (or DETAIL) makes DDP name the parameters that
went unused. Because the fix can break such models, it is advice only.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P

ID = "ddp-find-unused"
TITLE = "DDP searches for unused parameters every step"


def lint(index):
    """Static: DDP(..., find_unused_parameters=True), the literal True only."""
    for c in P.ddp_calls(index):
        if c.keywords.get("find_unused_parameters") is True:
            yield Finding(
                rule=ID, title=TITLE, path=index.path, line=c.line, end_line=c.end_line, severity="low",
                message=f"`{c.text[:60]}`: find_unused_parameters=True walks the autograd graph after every "
                        "forward and delays the gradient all-reduce; if every parameter gets a gradient each "
                        "step, drop it (TORCH_DISTRIBUTED_DEBUG=INFO names unused ones) (static: a suggestion, "
                        "not measured).",
                fix=Fix(ID, None, "drop find_unused_parameters=True once TORCH_DISTRIBUTED_DEBUG=INFO shows no "
                                  "unused parameters"),
            )


def _searches(run) -> np.ndarray:
    """The reducer's unused-parameter searches (its `search_unused_parameters` op, recorded with
    or without Python stacks) on the training thread, in the recorded steps."""
    tr = run.trace
    return np.flatnonzero(run.main & tr.cat_mask("cpu_op")
                          & tr.name_mask(lambda n: n.endswith("reducer::search_unused_parameters")))


def detect(run):
    found = list(static_detect(lint)(run))
    idx = _searches(run) if found else None
    for f in found:
        if not len(idx):
            yield f  # no search recorded (an older torch): the static suggestion stands
            continue
        per_step = float(run.trace.dur[idx].sum()) / max(run.n_steps, 1) / 1000
        yield replace(
            f, message=f"`find_unused_parameters=True`: DDP searches the autograd graph after every forward, "
                       f"{per_step:.3g} ms per step here; if every parameter gets a gradient each step, drop it "
                       "(TORCH_DISTRIBUTED_DEBUG=INFO names unused ones).",
            evidence=(Evidence("graph searches per step", round(len(idx) / max(run.n_steps, 1))),
                      Evidence("time in them per step (profiled)", per_step, "ms")),
            saving=WhatIf(Change(remove_cpu=tuple((float(run.trace.ts[i]), float(run.trace.end[i])) for i in idx)),
                          basis="the training thread's time in the DDP reducer's search for unused parameters "
                                "after each forward, removed in the replay",
                          confidence="medium"))


RULE = Rule(ID, TITLE, "distributed", detect, __doc__, needs=("source",), lint=lint)
