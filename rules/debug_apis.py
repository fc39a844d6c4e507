"""Debugging APIs left on in training: autograd anomaly detection, `gradcheck`, CUDA sync debug mode, deterministic algorithms.

## What it does
Finds debugging switches that stay on while the model trains:
`torch.autograd.set_detect_anomaly(True)`, `with torch.autograd.detect_anomaly():`,
`torch.autograd.gradcheck` / `gradgradcheck` in the training loop,
`torch.cuda.set_sync_debug_mode(...)` (non-zero), and
`torch.use_deterministic_algorithms(True)`. Profiler spans (`record_function`,
`emit_nvtx`) are not flagged.

## Why it is slow
Anomaly detection records a Python stack trace for every autograd operation in the
forward pass and checks every gradient of the backward pass for NaN, which reads a
value back from the GPU: a sync per backward node. `gradcheck` runs the function
again for every input element with finite differences in float64. The sync debug
mode inspects every CUDA call. Deterministic algorithms swap fast
nondeterministic kernels (atomics in scatter/index_add, some cuDNN algorithms) for
slower ones.

## Example
```python
torch.autograd.set_detect_anomaly(True)   # left over from hunting a NaN
for x, y in loader:
    loss = loss_fn(model(x), y)
    loss.backward(); opt.step(); opt.zero_grad()
```

## Use instead
```python
torch.autograd.set_detect_anomaly(args.debug)   # off unless asked for
for x, y in loader:
    loss = loss_fn(model(x), y)
    loss.backward(); opt.step(); opt.zero_grad()
```
Run `gradcheck` in a unit test, not in the training loop.

## When not to fix
While actually hunting a NaN or a nondeterminism bug. Deterministic algorithms are a
correctness choice (bit-reproducible runs): keep them when reproducibility matters
more than the time they cost; that finding is only `low`.
"""

from __future__ import annotations

import libcst as cst

from trainprof.finding import Evidence, Finding
from trainprof.rule import Rule
from trainprof.source import patterns as P

ID = "debug-apis"
TITLE = "Debugging API left on in training"


def _truthy(index, node: cst.CSTNode | None) -> bool | None:
    """A literal argument's truth (None: not a literal)."""
    if isinstance(node, cst.Ellipsis):
        return True  # the literal `...` (index.literal's "not a literal" marker too)
    v = index.literal(node)
    if v is ...:
        return None
    if isinstance(v, str):
        return v not in ("default", "")
    return bool(v)


def _first_arg(c, kw: str) -> cst.CSTNode | None:
    """The first positional argument (`*x` itself: not a literal), else the keyword's value."""
    positional = [a for a in c.node.args if a.keyword is None and a.star != "**"]
    if positional:
        return positional[0] if positional[0].star else positional[0].value
    return next((a.value for a in c.node.args if a.keyword is not None and a.keyword.value == kw), None)


def _with_lines(index) -> set[int]:
    """Lines of `with ...:` items (a call used as a context manager); cst.With is `async with` too."""
    return {index.line(it.item) for n in index.nodes(cst.With) for it in n.items}


def _findings(index):
    withs = _with_lines(index)
    for c in index.calls:
        q = c.qualname or ""
        if q in ("torch.autograd.set_detect_anomaly", "torch.autograd.anomaly_mode.set_detect_anomaly",
                 "torch.set_anomaly_enabled", "torch.autograd.anomaly_mode.set_anomaly_enabled"):
            if _truthy(index, _first_arg(c, "mode")) is True:
                yield c, "high", (f"`{c.text[:60]}` turns on autograd anomaly detection: every op records a stack "
                                  "trace and every backward node checks its gradients for NaN (a GPU->CPU sync each)")
        elif q in ("torch.autograd.detect_anomaly", "torch.autograd.anomaly_mode.detect_anomaly"):
            if c.line in withs and (index.in_loop(c.line) or _covers_loop(index, c)):
                yield c, "high", ("`with torch.autograd.detect_anomaly():` around training: every op records a "
                                  "stack trace" + ("" if _truthy(index, _first_arg(c, "check_nan")) is False else
                                                   " and every backward node checks its gradients for NaN"))
        elif q in ("torch.autograd.gradcheck", "torch.autograd.gradgradcheck",
                   "torch.autograd.gradcheck.gradcheck", "torch.autograd.gradcheck.gradgradcheck"):
            if index.in_loop(c.line) and not P.throttled(index, c.line):
                yield c, "high", (f"`{q.rsplit('.', 1)[-1]}` every step: it re-runs the function per input element "
                                  "with finite differences in float64")
        elif q == "torch.cuda.set_sync_debug_mode":
            if _truthy(index, _first_arg(c, "debug_mode")) is True:
                yield c, "medium", (f"`{c.text[:60]}`: the CUDA sync debug mode inspects every CUDA call "
                                    "and warns or raises at each sync")
        elif q == "torch.use_deterministic_algorithms":
            if _truthy(index, _first_arg(c, "mode")) is True:
                yield c, "low", ("`torch.use_deterministic_algorithms(True)` swaps fast nondeterministic kernels "
                                 "for slower deterministic ones (and raises where none exists); "
                                 "a reproducibility choice, not a bug")


def _covers_loop(index, call) -> bool:
    """Whether the `with` whose item is `call` contains a training loop."""
    for n in index.nodes(cst.With):
        if any(it.item is call.node for it in n.items):
            start, end = index.line(n), index.end_line(n)
            return any(start <= lp.line <= end for lp in index.loops)
    return False


def lint(index):
    """Static: a debugging switch that stays on while training."""
    for c, severity, what in _findings(index):
        yield Finding(rule=ID, title=TITLE, path=index.path, line=c.line, severity=severity,
                      message=f"{what} (static: suspected, not measured; turn it off outside debugging)."
                      if severity != "low" else f"{what} (static: suspected, not measured).")


def detect(run):
    if run.index is None:
        return
    for f in lint(run.index):
        evidence = ()
        if run.script is not None:
            _, per_step = run.line_time(run.script, f.line)
            if per_step > 0:
                evidence = (Evidence("time at this line per step", per_step / 1000, "ms"),)
        from dataclasses import replace

        yield replace(f, path=run.relpath(), evidence=evidence)


RULE = Rule(ID, TITLE, "compute", detect, __doc__, needs=("source",), lint=lint)
