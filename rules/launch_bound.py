"""Launch-bound step: many tiny kernels, and the CPU spends longer issuing them than the GPU spends running them.

## What it does
Counts the kernels each step launches, measures the CPU time of the operators that
launched them (the dispatcher, autograd and the launch calls) against the GPU time
the kernels ran, and names the lines that launch the most. It fires when the GPU is
idle for most of the step and the CPU's issuing time exceeds the kernels' own time.

## Why it is slow
Each eager PyTorch op costs the CPU 5-50 µs (Python, dispatch, the launch call)
however small the kernel is. A kernel of a few µs then leaves the GPU waiting for
the next launch: the step runs at the CPU's pace, and a faster GPU changes nothing.

## Example
```python
model = nn.Sequential(*[nn.Linear(256, 256) for _ in range(48)]).cuda()
opt = torch.optim.Adam(model.parameters(), foreach=False)
for x, y in loader:                         # batch 32: every kernel takes ~3 µs
    loss = F.mse_loss(model(x), y)
    loss.backward(); opt.step(); opt.zero_grad()
```

## Use instead
```python
opt = torch.optim.Adam(model.parameters(), fused=True)      # one launch, not one per tensor
model = torch.compile(model, mode="reduce-overhead")       # fused kernels, replayed as a CUDA graph
# or capture the whole step with torch.cuda.graphs (static shapes, static input buffers)
```
A larger batch also helps: the same launches do more work each.

## When not to fix
When the step is short and run rarely, or its shapes change every step (a CUDA graph
is recorded per shape). The estimate keeps the Python between operators and takes
out only the operators' own issuing time; capturing the whole step can gain more, down
to the GPU time alone, which the message gives as the limit.
"""

from __future__ import annotations

import numpy as np

from trainprof.estimate import Bound, Change, WhatIf
from trainprof.finding import Evidence, Finding
from trainprof.rule import Rule
from trainprof.trace import measures as M
from trainprof.trace.model import GPU_MEMCPY

ID = "launch-bound"
TITLE = "Launch-bound step: many tiny kernels"
MIN_KERNELS = 100  # per step
MAX_BUSY = 0.5  # GPU busy share of the step below which the GPU is waiting on launches
# CPU cost per kernel that stays once launches are batched (a CUDA graph replay issues
# each node for well under 1 µs of CPU; fused kernels need fewer launches still)
KEPT_US_PER_KERNEL = 1.0


def _launch_ops(run):
    """Top-level CPU operators of the process in the window that launched GPU work:
    (op indices, launches in each)."""
    tr = run.trace
    lo, hi = run.steps.window
    m = M.cpu_ops(tr) & (tr.pid == run.steps.pid) & (tr.ts >= lo) & (tr.end <= hi)
    ops = M.top_level(tr, m)
    li = np.sort(run.launches.calls)
    if not len(ops) or not len(li):
        return ops[:0], np.zeros(0, np.int64)
    count = np.zeros(len(ops), np.int64)
    # Per thread: the launches inside each op (ops of one thread do not overlap).
    for key in {(int(tr.pid[i]), int(tr.tid[i])) for i in ops.tolist()}:
        o = ops[(tr.pid[ops] == key[0]) & (tr.tid[ops] == key[1])]
        lt = np.sort(tr.ts[li[(tr.pid[li] == key[0]) & (tr.tid[li] == key[1])]])
        a = np.searchsorted(lt, tr.ts[o], side="left")
        b = np.searchsorted(lt, tr.end[o], side="right")
        count[np.searchsorted(ops, o)] = b - a
    keep = count > 0
    return ops[keep], count[keep]


def detect(run):
    tr, n = run.trace, run.n_steps
    lo, hi = run.steps.window
    g = np.array(run.launches.launched(), np.int64)
    kernels = g[~(tr.cat_mask(GPU_MEMCPY) | tr.name_mask(lambda s: "emset" in s))[g]]
    per_step = len(kernels) / n
    if per_step < MIN_KERNELS:
        return
    busy = run.gpu_busy_us
    step = (hi - lo) / n
    if run.gpu_busy_share >= MAX_BUSY:
        return  # busy enough once the profiler's own CPU cost is out
    ops, launches = _launch_ops(run)
    if not len(ops):
        return
    dur = tr.dur[ops]
    issuing = float(dur.sum()) / n
    if issuing * min(1.0, run.base_step_us / step) < busy:
        return  # the CPU issues faster than the GPU runs (profiler cost out): not the launches
    k_dur = tr.dur[kernels]
    by_line: dict = {}
    for i, c, d in zip(ops.tolist(), launches.tolist(), dur.tolist()):
        ln = run.script_line(i)
        t, k = by_line.get(ln, (0.0, 0))
        by_line[ln] = (t + d, k + c)
    ranked = sorted(by_line.items(), key=lambda kv: -kv[1][0])
    line = next((ln for ln, _ in ranked if ln is not None), 1)
    where = ", ".join(f"line {ln}: {k / n:.0f} kernels, {t / n / 1000:.3g} ms" for ln, (t, k) in ranked[:3]
                      if ln is not None)
    keep = np.minimum(1.0, launches * KEPT_US_PER_KERNEL / np.maximum(dur, 1e-9))
    floor = busy + per_step * KEPT_US_PER_KERNEL
    yield Finding(
        rule=ID, title=TITLE, path=run.relpath(), line=line, severity="medium",
        message=f"{per_step:.0f} kernels per step, median {np.median(k_dur):.3g} µs each: the GPU runs "
                f"{busy / 1000:.3g} ms of a {step / 1000:.3g} ms profiled step ({run.base_step_us / 1000:.3g} ms "
                f"unprofiled) while the CPU spends {issuing / 1000:.3g} ms "
                f"in the operators that launch them" + (f" ({where})" if where else "")
                + f". Fused optimizers, torch.compile and CUDA graphs cut the launches; capturing the whole step "
                  f"could bring it down to ~{floor / 1000:.3g} ms (GPU time alone, profiled).",
        evidence=(
            Evidence("kernels per step", per_step),
            Evidence("median kernel time", float(np.median(k_dur)), "µs"),
            Evidence("GPU busy per step", busy / 1000, "ms"),
            Evidence("CPU time in launching operators per step", issuing / 1000, "ms"),
        ),
        saving=Bound(WhatIf(
            Change(squeeze_cpu=tuple(zip(tr.ts[ops].tolist(), tr.end[ops].tolist(), keep.tolist()))),
            basis=f"the CPU time of the {len(ops)} operators that launched kernels in {n} steps, replayed at "
                  f"{KEPT_US_PER_KERNEL:g} µs per kernel with every kernel kept (the Python between them stays); "
                  "it overlaps the optimizer and Python-loop findings, so it is left out of the combined estimate",
            confidence="low",
        )),
    )


RULE = Rule(ID, TITLE, "gpu", detect, __doc__, needs=("trace", "cuda"))
