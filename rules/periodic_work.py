"""Work that runs every N steps (an evaluation, a checkpoint, a log flush) and stalls training each time.

## What it does
Reads the steady-state search's step times: steps many times longer than their
neighbours that come back at a fixed period. Their extra time, amortised over the
period, is what they cost each step. The finding points at the block in the
training loop that runs at that period (`if step % N == 0:` with N the measured
period, or the one such block whose N is not a literal).

## Why it is slow
While the block runs, training stops: an evaluation pass, a checkpoint written
synchronously, a histogram of every parameter. Once in N steps is cheap only if
the block is short next to N steps.

## Example
```python
for step, (x, y) in enumerate(loader):
    ...
    if step % 50 == 0:
        evaluate(model, val_loader)  # 2 s, every 50 steps of 20 ms: 2 ms a step
```

## Use instead
Run it less often, on a sample of the validation set, or off the training thread
(`torch.distributed.checkpoint.async_save` for checkpoints).

## When not to fix
Evaluation and checkpoints are part of training: the estimate is an upper bound
(the block never running). Below a few percent of the step, leave it.
"""

from __future__ import annotations

import libcst as cst

from trainprof.estimate import Bound, Measured
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule
from trainprof.source import patterns as P

ID = "periodic-work"
MIN_SHARE = 0.02  # of the steady step, amortised


def _modulus(index, node: cst.If):
    """The N of `if ... % N ...` (an int, or the source text where N is not a literal); None
    where the test takes no modulo."""
    m = P.modulo(index, node)
    if m is None:
        return None
    v = index.literal(m.right)
    return v if isinstance(v, int) and not isinstance(v, bool) else index.code(m.right)


def site(index, period: int) -> tuple[int | None, str]:
    """The line of the block in the training loop that runs every `period` steps, and how it was
    matched: its N equal to the period (within a step: a spike can land either side of a
    boundary), a multiple of it, or the one block whose N is not a literal."""
    blocks = [(index.line(n), _modulus(index, n)) for n in index.nodes(cst.If) if index.in_loop(index.line(n))]
    blocks = [(ln, k) for ln, k in blocks if k is not None]
    for match, how in ((lambda k: isinstance(k, int) and abs(k - period) <= 1, "its N is the measured period"),
                       (lambda k: isinstance(k, int) and k > period and k % period == 0,
                        "its N is a multiple of the measured period (steps of several micro-batches?)"),
                       (lambda k: isinstance(k, str), "the one block of the loop that runs every N steps, N not a literal")):
        hits = sorted({ln for ln, k in blocks if match(k)})
        if len(hits) == 1:
            return hits[0], how
    return None, ""


def detect(run):
    st = run.info.get("steady") or {}
    period, spike, step = st.get("period"), st.get("spike_ms"), st.get("step_ms")
    if not (period and spike and step) or spike <= step:
        return
    extra = spike - step
    amortised = extra / period
    if amortised < MIN_SHARE * step:
        return
    line, how = site(run.index, period) if run.index is not None else (None, "")
    loops = run.index.loops if run.index is not None else []
    where = line or (loops[0].line if loops else 1)
    restarts = [ld for ld in run.info.get("loaders") or [] if ld.get("num_workers") and not ld.get("persistent_workers")]
    fix = f"run the block every {period * 10} steps instead of {period}, or asynchronously"
    if line:
        what = f"the block at line {line} runs every {period} steps ({how})"
    elif restarts:
        # no block runs at that period, and a loader's workers start anew at each pass over its data
        w = restarts[0]["num_workers"]
        what = (f"no `if ... % N` block matches: an epoch's end? A DataLoader with num_workers={w} and "
                "persistent_workers=False starts its workers again at every epoch (and refills its queue)")
        where = run.loader_call.line if run.loader_call is not None else where
        fix = "persistent_workers=True on the DataLoader (its workers then live across epochs)"
    else:
        what = "no `if ... % N` block of the training loop matches the period: an evaluation or an epoch's end?"
    # The steady step leaves the spikes out: the user's step is step + amortised; the saving is
    # stated against the steady step so that speedup = (step + amortised) / step.
    saved = amortised * step / (step + amortised)
    yield Finding(
        rule=ID,
        title="Periodic work stalls training",
        path=run.relpath(),
        line=where,
        severity="medium" if amortised >= 0.1 * step else "low",
        message=f"every {period} steps one step takes {spike:.4g} ms against a steady {step:.3g} ms: "
                f"{amortised:.3g} ms a step amortised ({100 * amortised / step:.0f}% of the step); {what}. "
                "Run it less often, on less data, or off the training thread.",
        evidence=(
            Evidence("period", period, "steps"),
            Evidence("spike step", spike, "ms"),
            Evidence("amortised cost per step", amortised, "ms"),
        ),
        saving=Bound(Measured(
            saved,
            basis=f"the spikes' extra time over the steady step ({extra:.4g} ms, their median in the steady-state "
                  f"search, unprofiled) over their period of {period} steps: the block never running",
            confidence="medium" if line else "low")),
        fix=Fix(ID, None, fix),
    )


RULE = Rule(ID, "Periodic work stalls training", "io", detect, __doc__, needs=("trace",))
