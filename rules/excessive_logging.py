"""Logging every step: `print`, `logging`, `SummaryWriter.add_*` (histograms above all), progress-bar updates.

## What it does
Measures, per logging line in the training loop, the time the training thread
spends on that line each step -- formatting, the syncs it forces by reading
CUDA tensors, and the writer's own work -- and proposes logging every N steps,
with N chosen so that what remains costs under 0.5% of a step.

## Why it is slow
Each logged value is read back from the GPU (a sync), formatted in Python and
written out. Histograms are worse: they copy whole weight tensors to the host and
bin them in NumPy; SummaryWriter's background thread then serializes and writes
them, holding the GIL while the training thread waits. At hundreds of steps per
second this dominates the step.

## Example
```python
for step, (x, y) in enumerate(loader):
    ...
    writer.add_scalar("loss", loss, step)
    for name, p in model.named_parameters():
        writer.add_histogram(name, p, step)
```

## Use instead
```python
    if step % 100 == 0:
        writer.add_scalar("loss", loss, step)
    if step % 1000 == 0:
        for name, p in model.named_parameters():
            writer.add_histogram(name, p, step)
```

## When not to fix
Logs you read every step while debugging; epoch-end logs (they run once an
epoch, not per step, and are not flagged). If the line costs under 1% of the
step here, the estimate says it gains ~0.
"""

from __future__ import annotations

import libcst as cst
import numpy as np
from libcst import matchers as m

from trainprof.estimate import Change, WhatIf
from trainprof.finding import STATIC, Evidence, Finding, Fix
from trainprof.fix.codemod import Codemod, Site, replace
from trainprof.rule import Rule
from trainprof.source import frameworks as F
from trainprof.source import patterns as P
from trainprof.trace import measures as M

ID = "excessive-logging"
EVERY = (10, 50, 100, 500, 1000)


def _every(cost_us: float, step_us: float) -> int:
    for n in EVERY:
        if cost_us / n < 0.005 * step_us:
            return n
    return EVERY[-1]


def _writer_stalls(run, own: list) -> list:
    """Training-thread time outside the logging lines that overlaps the writer thread's
    Python work (GIL contention): it goes when the logging goes."""
    ws, we = M.background_python(run.trace, run.steps, "tensorboard")
    if not len(ws):
        return []
    os_, oe = M.merge(np.array([a for a, _ in own] or [0.0]), np.array([b for _, b in own] or [0.0]))
    out = []
    for a, b in zip(ws.tolist(), we.tolist()):
        # clip each writer interval against the logging lines' own time (already removed)
        k = int(np.searchsorted(oe, a, side="right"))
        while a < b:
            if k < len(os_) and os_[k] < b:
                if os_[k] > a:
                    out.append((a, float(os_[k])))
                a = max(a, float(oe[k]))
                k += 1
            else:
                out.append((a, b))
                break
    return out


def detect(run):
    n = run.n_steps
    sync_by_line = run.per_line(s.idx for s in run.syncs.events)
    step_us = run.step_us
    lines = []
    for line in sorted(run.logging_lines):
        intervals, cost_us = run.line_time(run.script, line)
        if intervals and cost_us >= 10.0:  # shown even when cheap: "gains ~0 here" says so
            call = next(c for c in run.index.calls_at(line) if P.is_logging(c))
            lines.append((line, intervals, cost_us, call))
    # The writer thread's GIL time goes with the costliest SummaryWriter line.
    writer = [x for x in lines if (x[3].method or "").startswith("add_")]
    top_writer = max(writer, key=lambda x: x[2])[0] if writer else None
    stalls = _writer_stalls(run, [iv for x in lines for iv in x[1]]) if top_writer else []
    for line, intervals, cost_us, call in lines:
        syncs = sync_by_line.get(line, [])
        every = _every(cost_us, step_us)
        extra = stalls if line == top_writer else []
        stall_us = sum(b - a for a, b in extra) / n
        ms, base = run.cpu_ms(intervals), run.base_step_us / 1000  # unprofiled, as the step time
        yield Finding(
            rule=ID,
            title="Logging every step",
            path=run.relpath(),
            line=line,
            severity="medium",
            message=f"`{call.text[:60]}` runs every step and holds the training thread "
                    f"{ms:.3g} ms per step ({100 * ms / base:.1f}% of the step"
                    + (f", {len(syncs) / n:.3g} GPU syncs" if syncs else "")
                    + (f"; the writer thread holds the GIL {stall_us / 1000:.3g} ms more" if stall_us else "")
                    + f"); log every {every} steps.",
            evidence=(
                Evidence("time per step at this line", ms, "ms"),
                Evidence("share of the step", 100 * ms / base, "%"),
                Evidence("time per step at this line, profiled", cost_us / 1000, "ms"),
                Evidence("syncs per step", len(syncs) / n),
            ) + ((Evidence("writer thread's Python time overlapping the step", stall_us / 1000, "ms"),) if extra else ()),
            saving=WhatIf(
                Change(remove_cpu=tuple(intervals) + tuple(extra), drop_syncs=frozenset(syncs)),
                basis=f"the line's measured time on the training thread over {n} steps"
                      + (" and the writer thread's Python time overlapping the rest of the step" if extra else "")
                      + f", replayed away, then 1/{every} of it added back",
                keep_fraction=1.0 / every,
                periodic=True,
                confidence="high",
            ),
            fix=_framework_fix(run.index, call, every)
            or FIX.fix(f"guard with `if step % {every} == 0:`; keep epoch-end logs", every=every),
        )


def _framework_fix(index, call, every: int) -> Fix | None:
    """A framework's own logging call (`self.log` under Lightning) is paced by its setting."""
    fw = F.loop_settings(index)
    if fw is None or call.receiver != "self":
        return None
    return Fix(ID, None, f"call it every {every} steps (`if batch_idx % {every} == 0:`); the logger's writes are "
                         f"paced by {F.logging_advice(fw, every)}")


# -- the codemod ------------------------------------------------------------------------
DEFAULT_EVERY = 100  # --static: no measured cost to choose N from
# What an inner logging loop may iterate: views that can be iterated again (skipping the
# loop consumes nothing another step would see).
_REITERABLE = {"named_parameters", "parameters", "named_modules", "modules", "named_buffers", "buffers",
               "named_children", "children", "items", "keys", "values"}
# Calls inside a logging call's arguments that change state the rest of the run reads.
_WORK = {"append", "extend", "pop", "update", "step", "backward", "zero_grad", "next", "send", "put"}


def _inside(site: Site, node, outer) -> bool:
    return node is outer or any(a is outer for a in site.ancestors(node))


def _is_logging(site: Site, call: cst.Call) -> bool:
    """patterns.is_logging, on a libcst call."""
    q = site.qualname(call) or ""
    if q == "print" or any(q.startswith(p) for p in P.LOGGING_QUALNAMES[1:]):
        return True
    f = call.func
    if isinstance(f, cst.Attribute) and f.attr.value in P.LOGGING_METHODS:
        return f.attr.value.startswith("add_") or any(h in site.code(f.value).lower() for h in P.WRITER_HINTS)
    return False


def _pure_logging(site: Site, stmt) -> bool:
    """A line of logging calls only, whose arguments bind and change nothing: running it
    less often changes nothing but the logs."""
    if not isinstance(stmt, cst.SimpleStatementLine):
        return False
    for s in stmt.body:
        if not (isinstance(s, cst.Expr) and isinstance(s.value, cst.Call) and _is_logging(site, s.value)):
            return False
        if m.findall(s, m.NamedExpr()):
            return False
        for c in m.findall(s, m.Call()):
            f = c.func
            name = f.attr.value if isinstance(f, cst.Attribute) else f.value if isinstance(f, cst.Name) else ""
            if name in _WORK or (name.endswith("_") and not name.startswith("_")):  # x.add_(...): in place
                return False
    return True


def _logging_loop(site: Site, node) -> bool:
    """`for name, p in model.named_parameters(): writer.add_histogram(...)`: a loop over a
    re-iterable view whose body only logs."""
    if not isinstance(node, cst.For) or node.orelse or node.asynchronous or not isinstance(node.body, cst.IndentedBlock):
        return False
    it = node.iter
    while isinstance(it, cst.Call) and site.qualname(it) in ("enumerate", "sorted", "list") \
            and it.args:
        it = it.args[0].value
    if not (isinstance(it, (cst.Name, cst.Attribute, cst.List, cst.Tuple))
            or isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute) and it.func.attr.value in _REITERABLE):
        return False
    return all(_pure_logging(site, s) or _logging_loop(site, s) for s in node.body.body)


def _counter(site: Site, loop) -> str | None:
    """The step counter a training loop binds: `for step in range(...)` (or trange, or
    tqdm(range(...))), `for i, batch in enumerate(...)`."""
    if not isinstance(loop, cst.For):
        return None
    it, t = loop.iter, loop.target
    binds = site.assignments(it.value) if isinstance(it, cst.Name) else []
    if len(binds) == 1 and isinstance(binds[0], cst.Assign):  # pbar = trange(n); for step in pbar
        it = binds[0].value
    q = site.qualname(it) if isinstance(it, cst.Call) else None
    if q and q.startswith("tqdm.") and not q.endswith("trange") and it.args:  # a progress bar around it
        it = it.args[0].value
        q = site.qualname(it) if isinstance(it, cst.Call) else None
    if isinstance(t, cst.Name) and (q == "range" or (q or "").endswith("trange")):
        return t.value
    if isinstance(t, (cst.Tuple, cst.List)) and t.elements and isinstance(t.elements[0].value, cst.Name) \
            and q == "enumerate":
        return t.elements[0].value.value
    return None


def _periodic(site: Site, node, loop) -> cst.If | None:
    """An `if` between node and the loop whose test takes a modulo (`if step % 10 == 0:`)."""
    for a in site.ancestors(node):
        if a is loop:
            return None
        if isinstance(a, cst.If) and not _inside(site, node, a.test) \
                and m.findall(a.test, m.BinaryOperation(operator=m.Modulo())):
            return a
    return None


def _unit(site: Site, call: cst.Call):
    """(what to guard, the step counter) for a logging call, or (None, why it is left alone);
    why is None where --static need not say (outside the training loop's body)."""
    loop = site.training_loop_of(call)
    quiet = site.lines is None
    if loop is None:
        # in a loop around the training loop, outside it: once per epoch
        if any(isinstance(a, (cst.For, cst.While)) and any(_inside(site, t, a.body) for t in site.training_loops())
               for a in site.ancestors(call)):
            return None, "runs once per pass of the inner training loop (once per epoch): kept"
        return None, None if quiet else "not inside a training loop"
    if not _inside(site, call, loop.body):  # a progress bar over the loader, say
        return None, None if quiet else "in the training loop's header: left alone"
    guard = _periodic(site, call, loop)
    if guard is not None:
        return None, f"already periodic (`if {site.code(guard.test)}:`): nothing to do"
    stmt = site.statement(call)
    if not isinstance(stmt, cst.SimpleStatementLine):
        return None, "part of a compound statement or a one-line block: left alone"
    unit = stmt
    for a in site.ancestors(stmt):
        if a is loop:
            break
        if isinstance(a, cst.For) and _logging_loop(site, a):
            unit = a  # the whole inner loop that only logs (the outermost such loop)
        elif isinstance(a, (cst.For, cst.While, cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return None, "inside an inner loop or function that does other work: left alone"
    if unit is stmt and not _pure_logging(site, stmt):
        return None, "also does other work than logging (assigns, updates state): left alone"
    if not isinstance(site.parent(unit), cst.IndentedBlock):
        return None, "in a one-line block: left alone"
    step = _counter(site, loop)
    if step is None:
        return None, ("no step counter to guard with (a while loop, or `for batch in loader`: "
                      "`for step, batch in enumerate(loader)` has one): left alone")
    if any(_inside(site, a, loop.body) for a in site.assignments(step)):
        return None, f"the step counter `{step}` is rebound inside the loop: left alone"
    if unit is not stmt:  # names the inner loop binds, read later in the step, would go stale
        bound = {n.value for n in m.findall(unit.target, m.Name())}
        if any(n.value in bound and site.is_load(n) and not _inside(site, n, unit)
               for n in m.findall(loop.body, m.Name())):
            return None, f"`{site.code(unit.target)}` of the inner loop are read after it: left alone"
    return unit, step


class _Reindent(cst.CSTTransformer):
    """Backslash continuations keep their indentation literally: move them in with the block."""

    def __init__(self, extra: str):
        super().__init__()
        self.extra = extra

    def leave_SimpleWhitespace(self, original_node, updated_node):
        return updated_node.with_changes(value=updated_node.value.replace("\\\n", "\\\n" + self.extra))


def _transform(site: Site) -> cst.Module:
    units, noted, covered = {}, set(), set()  # units: what to guard -> (counter, N)
    for call in site.nodes(cst.Call):
        if not _is_logging(site, call) or not site.wanted(call):
            continue
        covered |= set(range(site.pos[call].start.line, site.pos[call].end.line + 1))
        unit, step_or_why = _unit(site, call)
        if unit is None:
            stmt = site.statement(call)
            if step_or_why and stmt not in noted:
                site.note(stmt, False, step_or_why)
                noted.add(stmt)
            continue
        # several findings in one inner loop: the rarest N asked for keeps each under budget
        every = max(site.param(call, "every", DEFAULT_EVERY), units.get(unit, (None, 0))[1])
        units[unit] = (step_or_why, every)
    for ln in sorted((site.lines or set()) - covered):
        site.note(ln, False, "no logging call here that the codemod recognizes: left alone")
    edits = {}
    for block in dict.fromkeys(site.parent(u) for u in units):
        # consecutive guarded statements of one block with the same counter and N share one `if`
        body, runs = list(block.body), []
        for i, s in enumerate(body):
            if s in units:
                if runs and runs[-1][-1] is body[i - 1] and units[runs[-1][0]] == units[s]:
                    runs[-1].append(s)
                else:
                    runs.append([s])
        indent = block.indent if block.indent is not None else site.module.default_indent
        for run in runs:
            step, every = units[run[0]]
            inner = [s.visit(_Reindent(indent)) for s in run]
            edits[run[0]] = cst.If(test=cst.parse_expression(f"{step} % {every} == 0"),
                                   body=cst.IndentedBlock([inner[0].with_changes(leading_lines=[]), *inner[1:]],
                                                          indent=block.indent),
                                   leading_lines=run[0].leading_lines)  # comments above stay above the `if`
            edits.update({s: cst.RemovalSentinel.REMOVE for s in run[1:]})
            for s in run:
                site.note(s, True, f"guarded with `if {step} % {every} == 0:`")
    return replace(site.module, edits)


FIX = Codemod(
    ID, "unsafe",
    "guard per-step logging in the training loop with `if step % N == 0:` (epoch-end logs kept)",
    "the guarded lines run every N steps only: check that nothing else relies on their per-step side "
    "effects (a progress bar's counters, a logger's running averages, wandb's implicit step, a file "
    "another process tails), and that step 0 and the last step still log what you need",
    _transform,
)


# -- static detection (`trainprof lint`) ------------------------------------------------
_HEAVY = {"add_histogram", "add_image", "add_figure"}
_PER_PARAM = {"named_parameters", "parameters", "named_modules", "modules", "named_buffers", "buffers",
              "named_children", "children"}


def _headers(index) -> set[int]:
    """ids of the nodes in the training loops' headers (`for x in tqdm(loader):` is no log call)."""
    return {id(x) for lp in index.loops if isinstance(lp.node, cst.For) for x in index.walk(lp.node.iter)}


def _per_param_loop(index, line: int) -> bool:
    """Whether `line` is in a `for ... in model.named_parameters():` (or modules, buffers ...) loop."""
    for n in index.nodes(cst.For):
        if index.line(n.body.body[0]) <= line <= index.end_line(n):
            it = n.iter
            if isinstance(it, cst.Call) and isinstance(it.func, cst.Attribute) and it.func.attr.value in _PER_PARAM:
                return True
    return False


def lint(index):
    """Static: logging calls that run on every step of the training loop."""
    headers, seen = _headers(index), set()
    every = index.options.get(ID, {}).get("every", DEFAULT_EVERY)  # [tool.trainprof.excessive-logging]
    paced = F.uses_framework_loop(index)  # the framework writes self.log's values every N steps
    for c in index.calls:
        if not P.is_logging(c) or not index.in_loop(c.line) or id(c.node) in headers or c.line in seen \
                or P.throttled(index, c.line) or (paced and c.receiver == "self"):
            continue
        seen.add(c.line)
        per_param = _per_param_loop(index, c.line)
        heavy = c.method in _HEAVY or per_param
        yield Finding(
            rule=ID, title="Logging every step", path=index.path, line=c.line,
            severity="medium" if heavy else "low",
            message=f"`{c.text[:60]}` runs every step" + (" for every parameter" if per_param else "")
                    + f": formatting and writing it holds the training thread (and syncs on a CUDA tensor) "
                      f"({STATIC}).",
            fix=FIX.fix(f"guard with `if step % {every} == 0:`; keep epoch-end logs", every=every),
        )


RULE = Rule(ID, "Logging every step", "logging", detect, __doc__, needs=("trace", "source", "lines"), codemods=(FIX,),
            options={"every": (int, lambda v: 1 <= v <= 1_000_000, "a whole number of steps, 1 or more")},
            lint=lint, aliases=('histogram-logging',))
