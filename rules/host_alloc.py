"""Tensors built on the host and copied to the device every step: `torch.zeros(...).to(device)`, `torch.tensor(list).cuda()`.

## What it does
Finds lines in the training loop that construct a tensor on the CPU and send it
to the GPU in the same expression, measures what that line costs per step (CPU
construction, the copy, the sync the copy forces), and says whether the tensor is
loop-invariant (its arguments are literals), so it could be built once.
`trainprof lint` also follows a name: `t = torch.from_numpy(a)` ... `t.cuda()`
(at the construction; a pinned, asynchronous copy of host data is left alone), and
arithmetic and `cat`/`stack` of host tensors: `torch.cat([torch.arange(b) + b, ...]).cuda()`.

## Why it is slow
The tensor is built by the CPU, copied through a staging buffer, and -- without
`non_blocking` -- the copy waits for all queued GPU work. Built on the device it
is one kernel launch; built once outside the loop it costs nothing per step.

## Example
```python
for x, y in loader:
    pos = torch.arange(seq_len).to(device)
    mask = torch.tensor([1.0, 0.5, 0.25]).cuda()
```

## Use instead
```python
mask = torch.tensor([1.0, 0.5, 0.25], device=device)   # loop-invariant: once
for x, y in loader:
    pos = torch.arange(seq_len, device=device)
```

## When not to fix
When the values really come from the host each step (e.g. labels from Python
objects): then build them in the DataLoader and copy with `non_blocking=True`
from pinned memory instead. In a Python-bound loop the line may cost little.
"""

from __future__ import annotations

import libcst as cst
from libcst import matchers as m

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding, Fix
from trainprof.fix.codemod import (Codemod, Site, before, inside, kwarg, move_device, mutations, replace, with_kwarg)
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.source import values as V
from trainprof.trace import measures as M

ID = "host-alloc"


def _host_factories(run):
    """(line, factory call, invariant) for host constructions sent to the device on the same line."""
    out = []
    for line in sorted({c.line for c in run.index.calls if run.index.in_loop(c.line)}):
        calls = run.index.calls_at(line)
        if not any(P.is_to_device(c) for c in calls):
            continue
        for c in calls:
            if P.is_factory(c) and c.keywords.get("device", "cpu") in ("cpu", None):
                invariant = _literal_args(run.index, c.node)
                out.append((line, c, invariant))
                break
    return out


def _literal_args(index, call: cst.Call) -> bool:  # the positional arguments only; `*xs` is not a literal
    return all(not a.star and index.literal(a.value) is not ... for a in call.args if a.keyword is None and a.star != "**")


def detect(run):
    tr, n = run.trace, run.n_steps
    gpu_of = M.gpu_by_correlation(tr)
    copies = [int(i) for i in (M.memcpy_calls(tr) & run.main).nonzero()[0]]
    copies_by_line = run.per_line(copies)
    waits = {s.copy_call: s.idx for s in run.syncs.events if s.kind == "h2d"}
    for line, call, invariant in _host_factories(run):
        mine = copies_by_line.get(line, [])
        if not mine:
            continue
        intervals, cost_us = run.line_time(run.script, line)
        syncs = [waits[c] for c in mine if c in waits]
        gpu = [g for c in mine for g in gpu_of.get(int(tr.corr[c]), [])]
        nbytes = sum(int(tr.nbytes[g]) for g in gpu if tr.nbytes[g] > 0)
        blocked = sum(float(tr.dur[s]) for s in syncs) / n / 1000
        # Built on the device, each construction is still a kernel launch or so.
        launches = len(mine) / n
        keep = 0.0 if invariant else min(1.0, launches * run.launches.cost_us / cost_us) if cost_us else 0.0
        how = "loop-invariant: build it once before the loop" if invariant else "build it on the device (device=...)"
        line_ms = max(run.cpu_ms(intervals), blocked)  # unprofiled; never less than its wait
        yield Finding(
            rule=ID,
            title="Tensor built on the host and copied every step",
            path=run.relpath(),
            line=line,
            severity="medium",
            message=f"`{call.text[:60]}` is built on the CPU and copied to the GPU every step: "
                    f"{line_ms:.3g} ms per step at this line, {blocked:.3g} ms of it waiting "
                    f"on a sync; "
                    f"{how}.",
            evidence=(
                Evidence("line time per step", line_ms, "ms"),
                Evidence("line time per step, profiled", cost_us / 1000, "ms"),
                Evidence("copies per step", len(mine) / n),
                Evidence("bytes per step", nbytes / n, "B"),
                Evidence("CPU blocked per step", blocked, "ms"),
                Evidence("loop-invariant", "yes" if invariant else "no"),
            ),
            saving=WhatIf(
                Change(remove_cpu=tuple(intervals), drop_syncs=frozenset(syncs), drop_gpu=frozenset(gpu)),
                basis="this line's measured time per step (construction, copy, sync), replayed away"
                      + ("" if invariant else f"; a device-side construction still costs ~{run.launches.cost_us:.0f} µs per launch"),
                keep_fraction=keep,
                confidence="high",
            ),
            fix=FIX.fix("build it on the device (device=...)" + (
                "; it is loop-invariant: `hoist-tensor` (unsafe) builds it once before the loop" if invariant else "")),
        )


# -- the codemods -----------------------------------------------------------------------
# Values that do not depend on where they are computed: literal data, fills, integer ranges.
_MAKERS = {"zeros", "ones", "full", "arange", "eye", "tensor", "as_tensor", "empty"}
# Deterministic, but a device kernel may round the last bit differently (float32
# accumulation, fused multiply-add): hoisted as they are, never moved to the device.
_ROUNDING = {"linspace", "logspace"}
# Built on the device they draw from the device's generator: other numbers.
_RANDOM = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "poisson",
           "rand_like", "randn_like", "randint_like"}
_CASTS = {"float", "double", "half", "bfloat16", "long", "int", "bool"}  # exact on either device
_PURE = {"torch.device", "len", "int", "float"}
_FILLS = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault", "sort", "reverse", "add"}


def _maker(site: Site, expr: cst.BaseExpression) -> tuple[cst.Call | None, str]:
    """The `torch.<factory>(...)` call under optional casts (`torch.arange(n).float()`), and its name."""
    while m.matches(expr, m.Call(func=m.Attribute(attr=m.OneOf(*map(m.Name, _CASTS))), args=[])):
        expr = expr.func.value
    q = site.qualname(expr) if isinstance(expr, cst.Call) else None
    if q and q.startswith("torch.") and q.count(".") == 1:
        return expr, q[len("torch."):]
    return None, ""


def _int(e) -> bool:
    return isinstance(e, cst.Integer) or m.matches(e, m.UnaryOperation(operator=m.Minus(), expression=m.Integer()))


def _why_not_moved(site: Site, maker: cst.Call, name: str) -> str:
    """Why this construction cannot simply be built on the device instead ('' if it can)."""
    if name in _RANDOM:
        return f"`torch.{name}` is random: on the device it draws other numbers, results would change"
    if name in _ROUNDING:
        return f"`torch.{name}` computed on the device may round differently in the last bit"
    if name not in _MAKERS:
        return f"`torch.{name}` is not a constructor the codemod knows to give the same values on the device"
    pos = [a.value for a in maker.args if a.keyword is None]
    kws = {a.keyword.value: a.value for a in maker.args if a.keyword is not None}
    if any(a.star for a in maker.args):
        return "*args/**kwargs in the constructor"
    if "device" in kws:
        return "the constructor already has device="
    extra = [k for k in kws if k not in ("dtype", "start", "end", "step")
             and not (k == "requires_grad" and m.matches(kws[k], m.Name("False")))]
    if extra:
        return f"`{extra[0]}=` changes what is built (an autograd leaf, pinned memory, ...)"
    if name == "arange" and not all(x is None or _int(x) for x in (kws.get("start", pos[0] if len(pos) > 1 else None),
                                                                    kws.get("step", pos[2] if len(pos) > 2 else None))):
        return "`torch.arange` with a start or step that is not an integer literal may round differently on the device"
    return ""


def _on_device(site: Site) -> cst.Module:
    edits = {}
    for call in site.nodes(cst.Call):
        if not (m.matches(call.func, m.Attribute(attr=m.Name("to") | m.Name("cuda"))) and site.wanted(call)):
            continue
        maker, name = _maker(site, call.func.value)
        if maker is None:
            continue
        kind, dev, why = move_device(site, call)
        why = why or _why_not_moved(site, maker, name)
        whole, recv = site.code(call), site.code(call.func.value)
        if not why and kind == "cpu":
            why = "moved to the CPU: it is built there already"
        if not why and "#" in whole[whole.index(recv) + len(recv):]:
            why = f"a comment inside `.{call.func.attr.value}(...)` would be lost"
        if why:
            site.note(call, False, why)
            continue
        device = '"cuda"' if dev is None else f'"cuda:{dev.value}"' if isinstance(dev, cst.Integer) else site.code(dev)
        built = with_kwarg(maker, "device", device)
        new = call.func.value.deep_replace(maker, built) if call.func.value is not maker else built
        edits[call] = new.with_changes(lpar=[*call.lpar, *new.lpar], rpar=[*new.rpar, *call.rpar])
        site.note(call, True, f"`torch.{name}(...)` built on the device (device={device})")
    return replace(site.module, edits)


FIX = Codemod(
    ID, "safe",
    "`torch.zeros(n).to(device)` -> `torch.zeros(n, device=device)` (deterministic constructors only)",
    "only constructors whose values do not depend on the device (literal data, fills, integer ranges, "
    "exact casts; torch.empty's contents are undefined either way) are moved, so the tensor holds "
    "the same bits; random ones (other generator), "
    "linspace and non-integer arange (may round differently), dtype conversions in .to() and "
    "autograd leaves are left alone",
    _on_device,
)


# -- hoist-tensor -------------------------------------------------------------------------
def _construction(site: Site, expr) -> tuple[cst.Call | None, str, list]:
    """The factory call at the root of `torch.f(...)[.cast()][.to(dev) | .cuda()]`, its name, and
    the argument expressions of the whole chain."""
    args = []
    if m.matches(expr, m.Call(func=m.Attribute(attr=m.Name("to") | m.Name("cuda")))):
        args, expr = [a.value for a in expr.args], expr.func.value
    maker, name = _maker(site, expr)
    return maker, name, args + [a.value for a in maker.args] if maker is not None else []


def _changes(site: Site, loop, name: str) -> str:
    """How the loop changes variable `name` ('' if it does not)."""
    if any(inside(site, a, loop) for a in site.assignments(name)):
        return "assigned"
    if mutations(site, loop, name) or m.findall(loop, m.Call(func=m.Attribute(
            value=m.Name(name), attr=m.OneOf(*map(m.Name, _FILLS))))):
        return "changed in place"
    return ""


def _variant(site: Site, e, loop) -> str:
    """The part of an argument that may differ between iterations ('' if none)."""
    if isinstance(e, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)) or m.matches(
            e, m.Name("True") | m.Name("False") | m.Name("None")):
        return ""
    if isinstance(e, cst.Name):
        how = _changes(site, loop, e.value)
        return f"`{e.value}` ({how} in the loop)" if how else ""
    if isinstance(e, cst.Attribute):
        return "" if (site.qualname(e) or "").startswith("torch.") else _variant(site, e.value, loop)
    if isinstance(e, cst.Subscript):
        parts = [e.value] + [x for s in e.slice for x in ((s.slice.value,) if isinstance(s.slice, cst.Index) else
                                                          (s.slice.lower, s.slice.upper, s.slice.step)) if x is not None]
    elif isinstance(e, (cst.Tuple, cst.List)):
        parts = [x.value for x in e.elements]
    elif isinstance(e, cst.BinaryOperation):
        parts = [e.left, e.right]
    elif isinstance(e, cst.UnaryOperation):
        parts = [e.expression]
    elif isinstance(e, cst.Call) and site.qualname(e) in _PURE and not any(a.star for a in e.args):
        parts = [a.value for a in e.args]
    else:
        return f"`{site.code(e)}`"
    return next((v for v in (_variant(site, p, loop) for p in parts) if v), "")


def _loops_around(site: Site, stmt) -> list:
    """The loops stmt sits directly in (no if/with/try between), innermost first."""
    out, node = [], stmt
    while isinstance(site.parent(node), cst.IndentedBlock) and isinstance(site.parent(site.parent(node)), (cst.For, cst.While)) \
            and site.parent(site.parent(node)).body is site.parent(node):
        node = site.parent(site.parent(node))
        out.append(node)
    return out


def _shared_use(site: Site, loop, stmt, target: str) -> str:
    """Why sharing one tensor across the loop's iterations would change what it computes ('' if not seen)."""
    changed = mutations(site, loop, target)
    if changed:
        return f"the loop changes `{target}` in place (`{site.code(changed[0]).strip()}`)"
    if any(inside(site, a, loop) and a is not stmt.body[0] for a in site.assignments(target)):
        return f"`{target}` is rebound in the loop"
    for n in m.findall(loop, m.Name(target)):
        if site.is_load(n) and before(site, n, stmt):
            return f"`{target}` is read in the loop before it is built"
        if isinstance(site.parent(n), cst.Assign):
            return f"`{target}` is aliased (`{site.code(site.parent(n)).strip()}`): changes through the alias are not checked"
    return ""


class _Hoists(dict):
    """replace()'s mapping, plus loop -> statements to put just before it (the loop's
    leading comments and blank lines go above them)."""

    def __init__(self):
        super().__init__()
        self.before: dict = {}

    def get(self, node, updated):
        if node not in self.before:
            return super().get(node, updated)
        moved = self.before[node]
        moved[0] = moved[0].with_changes(leading_lines=[*node.leading_lines, *moved[0].leading_lines])
        return cst.FlattenSentinel([*moved, updated.with_changes(leading_lines=[])])


def _hoist(site: Site) -> cst.Module:
    edits, left = _Hoists(), {}
    for stmt in site.nodes(cst.SimpleStatementLine):
        if not site.wanted(stmt) or not m.matches(stmt, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])])) \
                or (site.lines is None and site.training_loop_of(stmt) is None):
            continue
        assign = stmt.body[0]
        maker, name, args = _construction(site, assign.value)
        if maker is None:
            continue
        target = assign.targets[0].target.value
        why = ""
        if name in _RANDOM:
            why = f"`torch.{name}` is random: each iteration draws new numbers"
        elif name not in _MAKERS | _ROUNDING:
            why = f"`torch.{name}` is not a constructor the codemod knows"
        elif kwarg(maker, "requires_grad") is not None and not m.matches(kwarg(maker, "requires_grad").value, m.Name("False")):
            why = "an autograd leaf: hoisted, its gradient would accumulate across iterations"
        loops = _loops_around(site, stmt)
        if not why and not loops:
            why = "not directly in a loop's body (under an if/with/try, or no loop): left in place"
        out = None
        for loop in loops:  # hoist past every enclosing loop it does not depend on
            v = next((x for x in (_variant(site, a, loop) for a in args) if x), "")
            v = f"built from {v}: not loop-invariant" if v else _shared_use(site, loop, stmt, target)
            if v:
                why = why or (v if out is None else "")
                break
            out = loop
        block = site.parent(stmt)
        if not why and len(block.body) - left.get(block, 0) <= 1:
            why = "the only statement of its loop"
        if why or out is None:
            site.note(stmt, False, why or "not loop-invariant")
            continue
        left[block] = left.get(block, 0) + 1
        edits[stmt] = cst.RemovalSentinel.REMOVE
        lead = [ln for ln in stmt.leading_lines if ln.comment is not None]  # its comments go with it
        edits.before.setdefault(out, []).append(stmt.with_changes(leading_lines=lead))
        site.note(stmt, True, f"`{target}` built once, before the loop at line {site.line(out)}")
    return replace(site.module, edits)


HOIST = Codemod(
    "hoist-tensor", "unsafe",
    "build a loop-invariant tensor once, just before the training loop",
    "every iteration now shares one tensor: make sure nothing changes it in place through another "
    "name (a list it was stored in, a function that writes into its argument, an optimizer), that "
    "the names it is built from do not change inside the loop in ways the codemod cannot see "
    "(a function that fills a list, a global), and, if the loop can run zero times, that code after "
    "it does not expect the name unbound or holding an older value; direct rebinding, in-place "
    "methods, `x[i] = v`, `x += v`, `out=x`, aliases and autograd leaves are refused",
    _hoist,
)


# -- static detection (`trainprof lint`) ------------------------------------------------
_FROM_DATA = {"from_numpy", "as_tensor", "tensor"}  # with arguments that are not literals: host data


def lint(index):
    """Static: a tensor built on the host every step and copied to the device unpinned, in one
    expression or through a name (`t = torch.from_numpy(a)` ... `t.cuda()`)."""
    seen = set()
    for h in V.host_copies(index):
        f = h.factory
        if not h.per_step or h.pinned or f.node in seen:
            continue
        seen.add(f.node)
        invariant = _literal_args(index, f.node)
        leaf = f.qualname.rsplit(".", 1)[-1]
        data = not invariant and (leaf in _FROM_DATA or leaf.endswith("Tensor"))  # torch.LongTensor(labels)
        where = "" if h.same else f" (at line {h.copy.line})"
        yield Finding(
            rule=ID, title="Tensor built on the host and copied every step", path=index.path, line=f.line,
            severity="low",
            message=f"`{f.text[:60]}` is built on the CPU and copied to the device{where} every step"
                    + (" from pageable memory: convert the data in the Dataset/DataLoader (workers, pin_memory=True) "
                       "or pin it and copy with non_blocking=True" if data else
                       " (its arguments are literals: loop-invariant)" if invariant else "")
                    + " (static: suspected, not measured; `trainprof analyze` measures it).",
            fix=Fix(ID, None, "build it in the DataLoader with pin_memory=True, copy with non_blocking=True") if data
            else FIX.fix("build it on the device (device=...)" + (
                "; it is loop-invariant: `hoist-tensor` (unsafe) builds it once before the loop" if invariant else "")),
        )


RULE = Rule(ID, "Tensor built on the host and copied every step", "memory", detect, __doc__,
            needs=("trace", "cuda", "source", "lines"), codemods=(FIX, HOIST), lint=lint)
