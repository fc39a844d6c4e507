"""Host->device copies that block the training thread: `.to(device)` / `.cuda()` without `non_blocking=True`, or from pageable memory.

## What it does
Finds host->device copies in the training loop that make the CPU wait: copies
from pageable (not pinned) memory, and copies followed by a stream sync because
`non_blocking` was not set. Measures copies per step, bytes, and CPU time blocked.

## Why it is slow
A copy without `non_blocking=True` waits for the GPU to finish all work queued
before it, then for the copy itself. From pageable memory the driver first stages
the data through a pinned buffer on the CPU, so even an async copy costs CPU time
and cannot overlap with compute.

## Example
```python
loader = DataLoader(ds, batch_size=256, num_workers=4)
for x, y in loader:
    x, y = x.to("cuda"), y.to("cuda")
```

## Use instead
```python
loader = DataLoader(ds, batch_size=256, num_workers=4, pin_memory=True)
for x, y in loader:
    x, y = x.to("cuda", non_blocking=True), y.to("cuda", non_blocking=True)
```

## When not to fix
When the copy is tiny and the step is CPU-bound or loader-bound: the wait is
short and the GPU idles regardless. Never make a device->host copy
`non_blocking` if the CPU reads the result before a sync.
"""

from __future__ import annotations

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.trace import measures as M

ID = "blocking-h2d"
# Host->device bandwidth from pinned memory where the trace has no pinned copy of
# its own to measure: 51 GB/s, vs ~8 GB/s pageable, both measured on an H100 SXM
# (sample_traces/host_alloc and host_alloc.fixed, 32 MiB copies).
PINNED_GBPS_DEFAULT = 51.0


def _pinned_gbps(tr) -> float:
    m = tr.cat_mask("gpu_memcpy") & (tr.nbytes > (1 << 20)) & tr.name_mask(lambda n: n == "Memcpy HtoD (Pinned -> Device)")
    if m.any():
        return float(tr.nbytes[m].sum() / tr.dur[m].sum() / 1e3)
    return PINNED_GBPS_DEFAULT


def _host_alloc_line(ctx, line) -> bool:
    """Copies of tensors built on this same line belong to host-alloc."""
    return ctx.index is not None and line is not None and any(P.is_factory(c) for c in ctx.index.calls_at(line))


def detect(ctx):
    tr, n = ctx.trace, ctx.n_steps
    gpu_of = M.gpu_by_correlation(tr)
    calls = [int(i) for i in (M.memcpy_calls(tr) & ctx.main).nonzero()[0]]
    h2d = []
    for c in calls:
        gs = gpu_of.get(int(tr.corr[c]), [])
        kinds = [M.copy_kind(tr.name(g)) for g in gs]
        if any(k and k[0] == "HtoD" for k in kinds):
            h2d.append((c, gs, any(k and k[1] == "pageable" for k in kinds)))
    if not h2d:
        return
    waits = {s.copy_call: s.idx for s in ctx.syncs if s.kind == "h2d"}
    by_line: dict = {}
    for c, gs, pageable in h2d:
        by_line.setdefault(ctx.script_line(c), []).append((c, gs, pageable))
    for line, items in by_line.items():
        if _host_alloc_line(ctx, line):
            continue
        syncs = [waits[c] for c, _, _ in items if c in waits]
        pageable = [c for c, _, p in items if p]
        if not syncs and not pageable:
            continue
        nbytes = sum(int(tr.nbytes[g]) for _, gs, _ in items for g in gs if tr.nbytes[g] > 0)
        blocked = (sum(float(tr.dur[s]) for s in syncs) + sum(float(tr.dur[c]) for c in pageable)) / n / 1000
        gpu_ms = sum(float(tr.dur[g]) for _, gs, _ in items for g in gs) / n / 1000
        kind = "pageable" if pageable else "pinned"
        # Pinned + non_blocking: no wait, and no staging copy on the training thread.
        staging = tuple((float(tr.ts[c]) + 5.0, float(tr.end[c])) for c in pageable if tr.dur[c] > 5.0)
        # From pinned memory the same bytes move at the pinned bandwidth.
        pin_gbps = _pinned_gbps(tr)
        faster = tuple(
            (g, max(0.05, min(1.0, (tr.nbytes[g] / pin_gbps / 1e3) / tr.dur[g])))
            for c, gs, p in items if p for g in gs if tr.nbytes[g] > 0 and tr.dur[g] > 0
        )
        where = line if line is not None else (ctx.index.loops[0].line if ctx.index and ctx.index.loops else 1)
        yield Finding(
            rule=ID,
            title="Blocking host->device copy",
            path=ctx.relpath(),
            line=where,
            severity="medium",
            message=f"{len(items) / n:.3g} host->device copies per step from {kind} memory block the CPU "
                    f"{blocked:.3g} ms per step ({nbytes / n / 1e6:.3g} MB per step).",
            evidence=(
                Evidence("copies per step", len(items) / n),
                Evidence("copy kind", kind),
                Evidence("bytes per step", nbytes / n / 1e6, "MB"),
                Evidence("CPU blocked per step", blocked, "ms"),
                Evidence("GPU copy time per step", gpu_ms, "ms"),
            ),
            change=WhatIf(
                Change(remove_cpu=staging, drop_syncs=frozenset(syncs), gpu_scale=faster),
                basis="sync waits after these copies and the CPU staging of pageable copies, replayed away; "
                      f"pageable copies replayed at the pinned bandwidth ({pin_gbps:.0f} GB/s)",
            ),
            fix=Fix(ID, None, "pin_memory=True on the DataLoader and .to(device, non_blocking=True)"),
        )


RULE = Rule(ID, "Blocking host->device copy", "copy", detect, __doc__, needs=("trace", "cuda"))
