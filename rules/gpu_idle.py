"""Low GPU utilization: the GPU waits on the CPU for much of each step.

## What it does
Measures the share of each step during which no GPU stream runs anything, and
names the lines of the training loop the CPU thread was on during those gaps.

## Why it is slow
A GPU that waits is time the step pays in full. The gaps come from the CPU side:
Python overhead, many tiny kernels whose launches cost more than they compute,
syncs, data loading, logging.

## Example
```python
for x, y in loader:
    for i in range(x.shape[0]):          # per-sample Python loop
        loss = loss + crit(model(x[i:i+1]), y[i:i+1])
```

## Use instead
Vectorize over the batch; raise the batch size; fuse with `torch.compile` or
capture CUDA graphs; fix the syncs and loader waits reported beside this.

## When not to fix
When the model is small and the step already takes microseconds, or the idle
time comes from a fix listed separately (the other findings estimate those).
The saving shown is an upper bound: the step if the GPU never waited.
"""

from __future__ import annotations

import numpy as np

from trainprof.estimate import Bound, Measured
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.trace import measures as M

ID = "gpu-idle"
THRESHOLD = 0.6


def detect(run):
    tr = run.trace
    lo, hi = run.steps.window
    n = run.n_steps
    busy = run.gpu_busy_us * n
    share = busy / (hi - lo)
    if run.gpu_busy_share >= THRESHOLD:
        return  # busy enough once the profiler's own CPU cost is out
    g = M.gpu_mask(tr) & M.in_window(tr, lo, hi)
    bs, be = M.merge(np.clip(tr.ts[g], lo, hi), np.clip(tr.end[g], lo, hi))
    # Idle gaps, then which script line the training thread was on in each.
    gaps_s = np.concatenate([[lo], be])
    gaps_e = np.concatenate([bs, [hi]])
    keep = gaps_e > gaps_s
    gaps_s, gaps_e = gaps_s[keep], gaps_e[keep]
    per_line: dict = {}
    for a, b, sid in run.lines.spans:
        k0 = np.searchsorted(gaps_e, a, side="right")
        k = k0
        while k < len(gaps_s) and gaps_s[k] < b:
            ov = min(b, gaps_e[k]) - max(a, gaps_s[k])
            if ov > 0:
                line = run.lines.map.frame_in(sid, run.script) if run.script else None
                per_line[line] = per_line.get(line, 0.0) + ov
            k += 1
    top = sorted(((v, k) for k, v in per_line.items() if k is not None), reverse=True)[:3]
    idle_ms = (hi - lo - busy) / n / 1000
    holders = ", ".join(f"line {ln} ({v / n / 1000:.3g} ms)" for v, ln in top) or "unknown lines"
    line = top[0][1] if top else (run.index.loops[0].line if run.index and run.index.loops else 1)
    unprof = run.base_step_us / 1000
    floor = busy / n / 1000
    bound = max(0.0, unprof - floor)
    yield Finding(
        rule=ID,
        title="GPU idle for much of the step",
        path=run.relpath(),
        line=line,
        severity="medium",
        message=f"The GPU is busy {100 * share:.0f}% of the profiled step (~{100 * run.gpu_busy_share:.0f}% "
                f"without the profiler) and idle {idle_ms:.3g} ms per profiled step; meanwhile the CPU is on {holders}.",
        evidence=(
            Evidence("GPU busy", 100 * share, "%"),
            Evidence("GPU idle per step", idle_ms, "ms"),
            Evidence("GPU busy per step", floor, "ms"),
        ),
        saving=Bound(Measured(
            bound,
            basis="upper bound: the unprofiled step if the GPU never waited (its measured busy time per step)",
            confidence="low",
            after=f"at best the step is GPU-bound at ~{floor:.3g} ms",
        )),
        fix=Fix(ID, None, "cut the CPU work on the lines named (see the other findings), batch it, "
                          "or use torch.compile / CUDA graphs"),
    )


RULE = Rule(ID, "GPU idle for much of the step", "gpu", detect, __doc__, needs=("trace", "cuda", "lines"))
