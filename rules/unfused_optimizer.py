"""The optimizer updates parameters one tensor at a time (`foreach=False`, or an optimizer without a multi-tensor path).

## What it does
Measures the training thread's time inside `optimizer.step()` per step and the
kernels it launches; flags a step that launches several kernels per parameter
with no multi-tensor (`foreach`) or fused kernel among them. Also flags
`zero_grad(set_to_none=False)` in the training loop, with the time it spends
filling every gradient with zeros (its profiler spans and fill kernels).
`trainprof lint` also notes (info) Adam/AdamW/SGD built without `fused=` over
parameters already moved to a GPU.

## Why it is slow
A per-parameter Adam launches ~5-10 tiny kernels for every parameter tensor; a
model with hundreds of tensors spends milliseconds of CPU time launching
microsecond kernels. `foreach=True` batches the tensors into a few multi-tensor
kernels; `fused=True` (CUDA) does the whole update in one or two kernels.
(Measured on an H100: a launch-bound MLP with per-parameter Adam gained 2x from
foreach/fused, and nothing from `torch.compile` of the model alone.)
Zero-filling the gradients is one more pass over all of them; with
`set_to_none=True` (the default since torch 2.0) the next backward writes them fresh.

## Example
```python
opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
```

## Use instead
```python
opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)   # or foreach=True
opt.zero_grad()                                                    # not set_to_none=False
```

## When not to fix
When the optimizer's time is a small share of the step (the estimate says so), or
the optimizer has no foreach/fused implementation (write none by hand: use one
that has, or `torch.compile` the optimizer step). Keep `set_to_none=False` where
code reads `p.grad` as zeros before the backward, or where a parameter gets no
gradient in some steps and must still be stepped (momentum, weight decay).
"""

from __future__ import annotations

import re

import libcst as cst
import numpy as np
from libcst import matchers as m

from trainprof.estimate import Change, WhatIf
from trainprof.finding import STATIC, Evidence, Finding, Fix
from trainprof.fix.codemod import (Codemod, Site, add_import, is_true, kwarg, model_device, replace, torch_name,
                                   with_kwarg, without_kwarg)
from trainprof.rule import Rule
from trainprof.source import values as V
from trainprof.trace import measures as M

ID = "unfused-optimizer"
MIN_LAUNCHES = 40  # per step inside optimizer.step()
MIN_SHARE = 0.03
# Launches a foreach/fused step keeps: a few multi-tensor kernels per ~hundred tensors.
KEPT_LAUNCHES = 10


def detect(run):
    # One Rule, two patterns: the unfused step needs CUDA kernels to count; a
    # zero_grad(set_to_none=False) costs CPU time on any device.
    if run.trace.has_cuda:
        yield from _detect_unfused(run)
    yield from _detect_zero_grad(run)


def _detect_unfused(run):
    tr, n, by_call = run.trace, run.n_steps, run.launches.by_call
    lo, hi = run.steps.window
    m = (tr.cat_mask(M.USER_ANNOTATION) & tr.name_mask(lambda s: s.startswith("Optimizer.step#"))
         & M.on_thread(tr, run.steps) & (tr.ts >= lo) & (tr.ts < hi))
    spans = M.top_level(tr, m)
    if not len(spans):
        return
    s, e = tr.ts[spans], tr.end[spans]
    li = run.launches.calls
    if not len(li):
        return
    inside = li[M.within(tr.ts[li], s, e)]
    names = {tr.name(g) for i in inside.tolist() for g in by_call[i]}
    if any("multi_tensor" in x or "fused" in x.lower() for x in names):
        return  # already foreach/fused
    per_step = len(inside) / n
    cost = float((e - s).sum()) / n
    if per_step < MIN_LAUNCHES or cost < MIN_SHARE * run.step_us:
        return
    opt = tr.name(int(spans[0])).split("#", 1)[1].split(".")[0]
    call = None
    if run.index is not None:
        call = next((c for c in run.index.calls if (c.qualname or "").startswith("torch.optim.")
                     and c.qualname.rsplit(".", 1)[-1] == opt), None)
    line = call.line if call else (run.script_line(int(spans[0])) or 1)
    why = ("foreach=False" if call and call.keywords.get("foreach") is False else "per-parameter updates")
    keep = min(1.0, KEPT_LAUNCHES / per_step)
    ms, base = run.cpu_ms(zip(s.tolist(), e.tolist())), run.base_step_us / 1000  # unprofiled, as the step time
    yield Finding(
        rule=ID,
        title="Optimizer updates one tensor at a time",
        path=run.relpath(),
        line=line,
        severity="medium",
        message=f"`{opt}.step()` launches {per_step:.0f} kernels per step ({why}) and holds the training thread "
                f"{ms:.3g} ms per step ({100 * ms / base:.0f}% of the step); "
                f"foreach/fused updates launch a handful.",
        evidence=(
            Evidence("optimizer step time", ms, "ms"),
            Evidence("optimizer step time, profiled", cost / 1000, "ms"),
            Evidence("kernel launches in optimizer.step() per step", per_step),
            Evidence("optimizer", opt),
        ),
        saving=WhatIf(
            Change(remove_cpu=tuple(zip(s.tolist(), e.tolist()))),
            basis=f"optimizer.step()'s measured time (and its kernels) replayed away, then "
                  f"{KEPT_LAUNCHES} launches' worth of it added back",
            keep_fraction=keep,
            confidence="medium",
        ),
        fix=FUSED.fix(f"torch.optim.{opt}(..., fused=True) on CUDA (or foreach=True)"),
    )


# -- zero_grad(set_to_none=False) -------------------------------------------------------
ZERO_GRAD_SPAN = "Optimizer.zero_grad#"  # torch's record_function around Optimizer.zero_grad


def _keeps_zeros(call) -> bool:
    """`x.zero_grad(set_to_none=False)` or `x.zero_grad(False)` (a call site of the index)."""
    if call.method != "zero_grad":
        return False
    args = [a for a in call.node.args if a.keyword is None and a.star != "**"]  # positional, `*x` too
    return call.keywords.get("set_to_none") is False or (
        len(args) == 1 and not args[0].star and isinstance(args[0].value, cst.Name) and args[0].value.value == "False")


def _detect_zero_grad(run):
    if run.index is None or run.script is None:
        return
    calls = [c for c in run.index.calls if _keeps_zeros(c) and run.index.in_loop(c.line)]
    if not calls:
        return
    tr, n, by_call = run.trace, run.n_steps, run.launches.by_call
    lo, hi = run.steps.window
    mask = (tr.cat_mask(M.USER_ANNOTATION) & tr.name_mask(lambda s: s.startswith(ZERO_GRAD_SPAN))
            & M.on_thread(tr, run.steps) & (tr.ts >= lo) & (tr.ts < hi))
    by_line = run.per_line(M.top_level(tr, mask))
    launches = run.launches.calls
    for c in calls:
        lines = range(c.line, c.end_line + 1)
        spans = [i for ln in lines for i in by_line.get(ln, [])]
        if not spans and len(calls) == 1:
            spans = by_line.get(None, [])  # no line attribution: the one such call in the loop
        if spans:
            iv = [(float(tr.ts[i]), float(tr.end[i])) for i in spans]
        else:  # Module.zero_grad has no profiler span: the time its line held the thread
            iv = [x for ln in lines for x in run.line_time(run.script, ln)[0]]
        if not iv:
            continue
        s, e = M.merge(np.array([a for a, _ in iv]), np.array([b for _, b in iv]))
        inside = launches[M.within(tr.ts[launches], s, e)] if len(launches) else launches
        gpu = frozenset(g for i in inside.tolist() for g in by_call[i])  # the fill kernels
        cost = float((e - s).sum()) / n
        yield Finding(
            rule=ID,
            title="Gradients zero-filled every step",
            path=run.relpath(),
            line=c.line,
            severity="low",
            message=f"`{c.text}` writes zeros into every gradient each step ({cost / 1000:.3g} ms of the training "
                    f"thread per step" + (f", {len(gpu) / n:.3g} fill kernels" if gpu else "") + "); "
                    "`zero_grad()` (set_to_none=True, the default since torch 2.0) drops them instead and the "
                    "next backward writes them fresh.",
            evidence=(Evidence("zero_grad time per step", cost / 1000, "ms"),)
            + ((Evidence("fill kernels per step", len(gpu) / n),) if tr.has_cuda else ()),
            saving=WhatIf(
                Change(remove_cpu=tuple(zip(s.tolist(), e.tolist())), drop_gpu=gpu),
                basis=f"the training thread's time in `{c.text}` ({'its profiler spans' if spans else 'its line'}) "
                      "and the kernels launched there, replayed away (setting grads to None is not counted)",
                confidence="medium" if spans else "low",
            ),
            fix=ZERO_GRAD.fix(),
        )


# -- codemods -----------------------------------------------------------------------------
_OPTIM = re.compile(r"torch\.optim\.(?:\w+\.)?(Adam|AdamW|SGD)$")
def _optim_class(site: Site, node) -> str | None:
    mm = _OPTIM.match(site.qualname(node) or "") if isinstance(node, cst.Call) else None
    return mm.group(1) if mm else None


def _owner_of_params(call: cst.Call) -> str | None:
    """X of `Opt(X.parameters(), ...)` / `Opt(params=X.named_parameters())`."""
    p = kwarg(call, "params") or (call.args[0] if call.args and call.args[0].keyword is None else None)
    v = p.value if p is not None else None
    if isinstance(v, cst.Call) and not v.args and isinstance(v.func, cst.Attribute) \
            and v.func.attr.value in ("parameters", "named_parameters") and isinstance(v.func.value, cst.Name):
        return v.func.value.value
    return None


def _cuda_test(site: Site, dev) -> cst.BaseExpression | None:
    """`torch.cuda.is_available()` when dev is (a name bound once to) `"cuda" if it else "cpu"`,
    or torch.device of that."""
    if isinstance(dev, cst.Name):
        binds = site.assignments(dev.value)
        dev = binds[0].value if len(binds) == 1 and isinstance(binds[0], cst.Assign) else None
    if isinstance(dev, cst.Call) and site.qualname(dev) == "torch.device" and dev.args:
        dev = dev.args[0].value
    if isinstance(dev, cst.IfExp) and site.qualname(dev.test) == "torch.cuda.is_available" \
            and site.device_kind(dev.body) == "cuda" and site.device_kind(dev.orelse) == "cpu":
        return dev.test
    return None


def _fused_targets(site: Site) -> list[cst.Call]:
    """The constructors to act on: at the finding lines, or of the optimizer whose
    `.step()` is there (the step's span is what the detector measures)."""
    ctors = [c for c in site.nodes(cst.Call) if _optim_class(site, c)]
    if site.lines is None:
        return ctors
    out = [c for c in ctors if site.wanted(c)]
    for c in site.nodes(cst.Call):
        if isinstance(c.func, cst.Attribute) and c.func.attr.value == "step" and isinstance(c.func.value, cst.Name) \
                and site.wanted(c):
            name = c.func.value.value
            hits = [a.value for a in site.assignments(name)
                    if isinstance(a, cst.Assign) and _optim_class(site, a.value)]
            if not hits:
                site.note(c, False, f"`{name}` is not built by torch.optim.Adam/AdamW/SGD in this file: left alone")
            out += [h for h in hits if all(h is not o for o in out)]
    return out


def _fuse(site: Site, call: cst.Call, edits: dict) -> bool:
    """Adds fused= to one constructor (into edits); True when it needs `import torch`."""
    cls = _optim_class(site, call)
    fused = kwarg(call, "fused")
    if fused is not None:
        site.note(call, False, "already fused=True: nothing to do" if is_true(fused)
                  else f"fused={site.code(fused.value)} is set explicitly: left alone")
        return False
    foreach, diff = kwarg(call, "foreach"), kwarg(call, "differentiable")
    if foreach is not None or diff is not None:
        site.note(call, False, "differentiable= is given (fused does not support it): left alone" if diff is not None
                  else "foreach=False is given: an explicit choice the codemod does not override (to fuse, drop it "
                       "and add fused=True by hand): left alone" if site.code(foreach.value) == "False"
                  else "foreach= is given (fused=True raises with foreach=True): left alone")
        return False
    owner = _owner_of_params(call)
    if owner is None:
        site.note(call, False, "params are not `model.parameters()`: cannot tell they are CUDA tensors "
                               "(fused=True raises on CPU or non-float params): left alone")
        return False
    kind, dev = model_device(site, owner, site.line(call))
    if kind not in ("cuda", "cuda-or-cpu"):
        site.note(call, False, {
            "later": f"`{owner}` is moved to the device only after the optimizer is built (fused=True needs CUDA "
                     f"params when it is built): left alone",
            "unmoved": f"`{owner}` is not moved to a device before the optimizer is built: left alone",
            "cpu": f"`{owner}` is on the CPU: left alone",
        }.get(kind, f"cannot tell which device `{owner}` is on: left alone"))
        return False
    need_import = False
    if kind == "cuda":
        value = "True"
    elif (test := _cuda_test(site, dev)) is not None:
        value = site.code(test)  # fused exactly when the device is CUDA, by the script's own test
    else:  # torch < 2.4 has no fused CPU kernels: fused only where the device turns out CUDA
        t = torch_name(site)
        need_import = t is None
        value = f'{t or "torch"}.device({site.code(dev)}).type == "cuda"'
    edits[call] = with_kwarg(call, "fused", value)
    site.note(call, True, f"torch.optim.{cls}(..., fused={value}): `{owner}` is on "
                          f"{'CUDA' if kind == 'cuda' else 'CUDA or the CPU'} before the optimizer is built")
    return need_import


def _transform_fused(site: Site) -> cst.Module:
    edits: dict = {}
    need = [_fuse(site, c, edits) for c in _fused_targets(site)]
    out = replace(site.module, edits)
    return add_import(out, "torch") if any(need) else out


FUSED = Codemod(
    "fused-optimizer", "unsafe",
    "fused=True for torch.optim.Adam/AdamW/SGD whose parameters are on CUDA when it is built",
    "fused kernels round differently: losses are close, not bit-identical -- compare loss curves; needs torch>=2.0 "
    "for Adam/AdamW, >=2.3 for SGD; fused SGD rejects sparse gradients",
    _transform_fused,
)

_BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")))
_GRAD = m.Attribute(attr=m.Name("grad"))


def _grad_reads(site: Site, node) -> list:
    """`.grad` loads in node (not `p.grad = ...`)."""
    return [a for a in m.findall(node, _GRAD)
            if not isinstance(site.parent(a), (cst.AssignTarget, cst.AugAssign, cst.AnnAssign))]


def _zeros_read(site: Site, call: cst.Call) -> cst.CSTNode | None:
    """A read of `.grad` (directly, or by a function of this file) that runs after this
    zero_grad and before the next backward: there it would find None, not zeros."""
    z = site.pos[call].end.line
    loop = site.training_loop_of(call)
    scope = loop or next((a for a in site.ancestors(call) if isinstance(a, cst.FunctionDef)), site.module)
    backs = [site.line(b) for b in m.findall(scope, _BACKWARD)]
    after = [b for b in backs if b >= z]
    if after:
        windows, where = [(z, min(after))], scope
    else:  # zero_grad after the backward: the window wraps to the next iteration's start, and past the loop
        first = site.line(scope) if scope is not site.module else 1
        windows, where = [(z, float("inf"))] + ([(first, min(backs))] if backs else []), site.module
    readers = {f.name.value for f in site.nodes(cst.FunctionDef) if _grad_reads(site, f)}
    calls = [c for c in m.findall(where, m.Call(func=m.Name())) if c.func.value in readers]
    for r in _grad_reads(site, where) + calls:
        if any(a <= site.line(r) <= b for a, b in windows):
            return r
    return None


def _transform_zero_grad(site: Site) -> cst.Module:
    edits = {}
    for c in site.nodes(cst.Call):
        if not (isinstance(c.func, cst.Attribute) and c.func.attr.value == "zero_grad" and site.wanted(c)):
            continue
        arg = kwarg(c, "set_to_none") or (c.args[0] if len(c.args) == 1 and c.args[0].keyword is None else None)
        if arg is None or not (isinstance(arg.value, cst.Name) and arg.value.value == "False"):
            continue  # already the default, or a value the codemod cannot read
        reader = _zeros_read(site, c)
        if reader is not None:
            site.note(c, False, f"`{site.code(reader)}` (line {site.line(reader)}) reads the gradients after this "
                                f"zero_grad, before a backward writes them: it would find None, not zeros: left alone")
            continue
        new = without_kwarg(c, "set_to_none") if arg.keyword is not None else c.with_changes(args=())
        if not new.args:
            new = new.with_changes(whitespace_before_args=cst.SimpleWhitespace(""))
        edits[c] = new
        site.note(c, True, f"`{' '.join(site.code(c).split())}` -> `{site.code(c.func)}()`: the gradients are "
                           f"dropped, not zero-filled")
    return replace(site.module, edits)


ZERO_GRAD = Codemod(
    "zero-grad", "safe",
    "zero_grad(set_to_none=False) -> zero_grad(): drop the gradients instead of filling them with zeros",
    "the next backward writes each gradient fresh instead of adding it to zeros: the same values (set_to_none=True "
    "is torch's default since 2.0). Holds for parameters that get a gradient every step: one that gets none in a "
    "step keeps grad None, and the optimizer skips it instead of stepping it with zeros (momentum, weight decay)",
    _transform_zero_grad,
)


# -- static detection (`trainprof lint`) ------------------------------------------------


def _unfused(index, c) -> bool:
    """torch.optim.Adam/AdamW/SGD left to choose its kernels, over parameters moved to a GPU
    before it is built (fused=True would run the whole update in one kernel)."""
    owners = V.param_owners(index, c.node)
    return bool(_OPTIM.match(c.qualname or "")) and not {"fused", "foreach", "differentiable"} & set(c.keywords) \
        and not any(a.star for a in c.node.args) and bool(owners) and all(V.moved_before(index, o, c.node) for o in owners)


def lint(index):
    """Static: an optimizer told not to use its multi-tensor kernels, or one that could be fused
    on a GPU; gradients zero-filled instead of dropped."""
    gpu = V.gpu_named(index)
    for c in index.calls:
        slow = (c.qualname or "").startswith("torch.optim.") and c.keywords.get("foreach") is False
        if slow or (gpu and _unfused(index, c)):
            yield Finding(
                rule=ID, title="Optimizer updates one tensor at a time", path=index.path, line=c.line,
                end_line=c.end_line, severity="medium" if slow else "info",
                message=f"`{c.text[:60]}`: " + ("foreach=False updates each parameter with its own kernels, several "
                        "launches per parameter every step" if slow else "without fused=True the update of GPU parameters "
                        "is several multi-tensor kernels a step; fused=True does it in one (gains most on small, "
                        "launch-bound steps)") + f" ({STATIC}).",
                fix=Fix(ID, None, "drop foreach=False (multi-tensor kernels are the default on CUDA), "
                                  "or fused=True for Adam/AdamW/SGD") if slow else FUSED.fix(),
            )
        elif _keeps_zeros(c) and index.in_loop(c.line):
            yield Finding(rule=ID, title="Optimizer updates one tensor at a time", path=index.path, line=c.line,
                          severity="low", message=f"`{c.text[:60]}` fills every gradient with zeros each step instead "
                                                  f"of dropping it ({STATIC}).", fix=ZERO_GRAD.fix())


RULE = Rule(ID, "Optimizer updates one tensor at a time", "compute", detect, __doc__, needs=("trace",),
            codemods=(FUSED, ZERO_GRAD), lint=lint, aliases=('fused-optimizer', 'zero-grad'))
