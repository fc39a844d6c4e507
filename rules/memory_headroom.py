"""GPU memory far below capacity (room for a larger batch), or near it (allocator retries, OOM risk).

## What it does
Reads the CUDA caching allocator's peak memory and the device's capacity, recorded
at the end of the profiled steps, and the allocator calls in the trace. Far below
capacity while the GPU waits on the CPU, it says how much larger a batch would fit
and what that gives to first order. Near capacity, it counts the allocator's retries
(free the cache, then `cudaMalloc` again) and measures their time in the trace.

## Why it is slow
A step whose GPU is idle most of the time costs about the same CPU time with a
batch twice as large: the launches are the same, each kernel just does more. With
memory to spare, the batch size is the cheapest throughput there is. Near capacity
the opposite: the caching allocator frees its cache and calls `cudaMalloc`/`cudaFree`
(which synchronize the device) to find room, and the next longer batch fails.

## Example
```python
loader = DataLoader(ds, batch_size=16)   # peak 3 GiB of an 80 GiB GPU, GPU busy 10%
```

## Use instead
```python
loader = DataLoader(ds, batch_size=128)  # scale the learning rate with it (linear or sqrt rule)
```
Near capacity: a smaller batch with gradient accumulation, activation checkpointing,
bf16 autocast, `PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True` against fragmentation.

## When not to fix
A larger batch changes the optimization (learning rate, generalization): throughput
is not the only goal. When the GPU is already busy most of the step, a larger batch
gains little per sample, and this rule stays quiet.
"""

from __future__ import annotations

import numpy as np

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding
from trainprof.rule import Rule
from trainprof.trace import measures as M

ID = "memory-headroom"
TITLE = "GPU memory headroom"
LOW = 0.25  # peak reserved below this share of capacity: room to grow
HIGH = 0.90  # above: pressure
MAX_BUSY = 0.6  # GPU busy share below which a larger batch amortizes per-step CPU work
ALLOC_CALLS = ("cudaMalloc", "cudaFree", "cuMemAlloc_v2", "cuMemFree_v2", "cudaMallocAsync", "cudaFreeAsync",
               "cuMemCreate", "cuMemMap", "cuMemUnmap", "cuMemRelease")
GiB = 1024 ** 3


def _batch_line(run) -> int:
    """The DataLoader's batch_size, else the training loop's header."""
    c = run.loader_call
    if c is not None:
        return c.line
    if run.index is not None and run.index.loops:
        return run.index.loops[0].line
    return 1


def detect(run):
    mem = run.info["memory"]
    total, peak = mem.get("total") or 0, mem.get("peak_reserved") or 0
    if not total or not peak:
        return
    tr, n = run.trace, run.n_steps
    lo, hi = run.steps.window
    share = peak / total
    ev = (Evidence("peak reserved", peak / GiB, "GiB"), Evidence("peak allocated", mem.get("peak_allocated", 0) / GiB, "GiB"),
          Evidence("device memory", total / GiB, "GiB"))
    if share >= HIGH:
        m = M.runtime_mask(tr) & tr.name_mask(lambda s: s in ALLOC_CALLS) & M.in_window(tr, lo, hi)
        idx = np.flatnonzero(m)
        cost = float(tr.dur[idx].sum()) / n
        retries = mem.get("alloc_retries", 0)
        yield Finding(
            rule=ID, title=TITLE + ": near capacity", path=run.relpath(), line=_batch_line(run),
            severity="medium" if retries or cost else "low",
            message=f"the allocator reserved up to {peak / GiB:.3g} of {total / GiB:.3g} GiB ({100 * share:.0f}%); "
                    f"{retries} allocation retries so far, {len(idx) / n:.3g} cudaMalloc/cudaFree calls per step "
                    f"({cost / 1000:.3g} ms per step): a longer batch may not fit.",
            evidence=ev + (Evidence("allocator retries", retries), Evidence("allocator calls per step", len(idx) / n)),
            saving=WhatIf(Change(remove_cpu=tuple(zip(tr.ts[idx].tolist(), tr.end[idx].tolist()))),
                          basis="the allocator calls' measured time in the recorded steps, replayed away",
                          confidence="medium") if len(idx) else None,
        )
        return
    if share >= LOW:
        return
    step = run.base_step_us
    busy = run.gpu_busy_us
    if run.gpu_busy_share >= MAX_BUSY:
        return  # GPU-bound: a larger batch gives about the same samples/s
    k = int(min(8, max(2, 0.8 / share)))
    # First order: CPU time per step unchanged, GPU time k times longer.
    gain = k * step / max(step, k * busy)
    yield Finding(
        rule=ID, title=TITLE + ": room for a larger batch", path=run.relpath(), line=_batch_line(run), severity="info",
        message=f"the allocator reserved at most {peak / GiB:.3g} of {total / GiB:.3g} GiB ({100 * share:.0f}%) and "
                f"the GPU is busy {100 * busy / step:.0f}% of the step: a batch about {k}x larger fits, and if its "
                f"CPU time stays the same while the GPU's grows {k}x, samples/s rise ~{gain:.2g}x (first order, "
                f"from this trace; a larger batch changes the optimization).",
        evidence=ev + (Evidence("GPU busy share", 100 * busy / step, "%"),),
    )


RULE = Rule(ID, TITLE, "memory", detect, __doc__, needs=("trace", "cuda", "memory"))
