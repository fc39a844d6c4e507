"""The training loop waits on the DataLoader.

## What it does
Measures the time the training thread spends in the DataLoader's `__next__` each
step, says what binds -- loading on the training thread itself (`num_workers=0`)
or workers that cannot keep up -- and shows the loader's configuration.

## Why it is slow
With `num_workers=0` every batch is loaded, decoded and collated on the training
thread, in series with the step. With too few workers, or expensive per-sample
work, the step waits for the next batch while the GPU idles.

## Example
```python
loader = DataLoader(ds, batch_size=64, shuffle=True)   # num_workers=0
```

## Use instead
```python
loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=8,
                    pin_memory=True, persistent_workers=True, prefetch_factor=4)
```

## When not to fix
When the machine has no spare cores (workers would compete with the training
thread), or when the per-sample work itself is the cost: then make
`__getitem__` cheaper (pre-decode, cache) rather than add workers. The estimate
counts the cores this run had.
"""

from __future__ import annotations

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.trace import measures as M

ID = "dataloader-stall"


def detect(ctx):
    tr, n = ctx.trace, ctx.n_steps
    spans = M.dataloader_spans(tr, ctx.steps)
    if not len(spans):
        return
    wait_us = float(tr.dur[spans].sum()) / n
    share = wait_us / ctx.step_us
    if share < 0.05:
        return
    multi = any("MultiProcessing" in tr.name(int(i)) for i in spans)
    call = ctx.loader_call()
    kw = call.keywords if call else {}
    workers = kw.get("num_workers", 0 if call else None)
    if not isinstance(workers, int):
        workers = None  # not a literal: unknown
    seen = [ld for ld in ctx.run.get("loaders") or [] if bool(ld.get("num_workers")) == multi]
    if seen:  # the configuration the capture saw the loader run with beats the source's literal
        workers = seen[0]["num_workers"]
    cores = int(ctx.run.get("cpu_count") or 1)
    spare = max(1, cores - 1)  # one core stays with the training thread
    unprof_step = ctx.unprofiled_us or ctx.step_us
    if not multi:
        # Each batch costs `load` on the training thread; W workers load in parallel with the step.
        load_us = sum(ctx.unprofiled_cpu(float(tr.ts[i]), float(tr.end[i])) for i in spans) / n
        new_workers = min(spare, 8)
        floor = load_us / new_workers
        binds = "loading runs on the training thread (num_workers=0)"
    else:
        # Loader-bound with W workers: each produces a batch every ~W steps.
        w = workers if isinstance(workers, int) and workers > 0 else 1
        per_batch = w * unprof_step
        new_workers = max(w, min(spare, 2 * w))
        floor = per_batch / new_workers
        binds = f"the {w} worker process{'es' if w != 1 else ''} cannot keep up"
        if new_workers == w:
            binds += f", and this machine has no spare cores ({cores}): make __getitem__ cheaper"
    line = ctx.script_line(int(spans[0]))
    if line is None:
        line = ctx.index.loops[0].line if ctx.index and ctx.index.loops else 1
    keys = ("batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor")
    if seen:
        cfg = ", ".join(f"{k}={seen[0][k]!r}" for k in keys if seen[0].get(k) is not None) + " (as run)"
    else:
        cfg = ", ".join(f"{k}={kw[k]!r}" for k in keys if k in kw and kw[k] is not ...) or (
            "defaults (num_workers=0)" if call else "not found in the script")
    yield Finding(
        rule=ID,
        title="Training loop waits on the data loader",
        path=ctx.relpath(),
        line=line,
        severity="medium",
        message=f"The training thread waits {wait_us / 1000:.3g} ms per step on the DataLoader "
                f"({100 * share:.0f}% of the step): {binds}.",
        evidence=(
            Evidence("loader wait per step", wait_us / 1000, "ms"),
            Evidence("share of the step", 100 * share, "%"),
            Evidence("loader", "multi-process" if multi else "single-process"),
            Evidence("configuration", cfg),
            Evidence("CPU cores", cores),
        ),
        change=WhatIf(
            Change(remove_cpu=tuple(zip(tr.ts[spans].tolist(), tr.end[spans].tolist())), floor_us=floor),
            basis=f"loader wait measured on the training thread, replayed away; the step can be no faster than "
                  f"one batch per {floor / 1000:.3g} ms ({new_workers} worker{'s' if new_workers != 1 else ''} on {cores} cores)",
            confidence="medium",
        ),
        fix=Fix(ID, None, f"num_workers={new_workers}, persistent_workers=True, pin_memory=True"
                if not multi or new_workers > (workers or 0) else "make __getitem__ cheaper (pre-decode, cache, vectorize collate)"),
    )


RULE = Rule(ID, "Training loop waits on the data loader", "data", detect, __doc__, needs=("trace",))
