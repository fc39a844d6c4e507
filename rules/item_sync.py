"""GPU->CPU syncs in the training loop: `.item()`, `float(t)`, `.tolist()`, `.cpu()`, `.numpy()`, printing or formatting a CUDA tensor, boolean-mask indexing, `torch.cuda.synchronize()`.

## What it does
Finds the lines of the training loop where the CPU thread stops and waits for the
GPU, and measures how long it waits there per step. `trainprof lint` suspects
the reads that run every step (not those in an `if step % N == 0:` block, nor in
helpers called only from one).

## Why it is slow
CUDA runs asynchronously: the CPU queues kernels and runs ahead. Reading a value
back (`loss.item()`) copies it to the host and waits until every kernel queued
before it has finished; meanwhile the CPU queues nothing, so the GPU then idles
while the CPU catches up. Several syncs per step serialize CPU and GPU entirely.

## Example
```python
for x, y in loader:
    loss = model(x).loss
    losses.append(loss.item())      # waits for the whole forward, every step
    loss.backward(); opt.step(); opt.zero_grad()
```

## Use instead
```python
running = torch.zeros((), device="cuda")
for step, (x, y) in enumerate(loader):
    loss = model(x).loss
    running += loss.detach()          # stays on the GPU
    loss.backward(); opt.step(); opt.zero_grad()
    if step % 100 == 0:
        print(running.item() / 100)   # one sync per 100 steps
        running.zero_()
```

## When not to fix
When the value drives control flow every step (NaN checks, early stopping, a
data-dependent schedule), or when the step is CPU-bound anyway: then the GPU is
already idle at the sync and removing it gains nothing; the estimate says so.
An `.item()` on a CPU tensor is not a sync.
"""

from __future__ import annotations

import libcst as cst
from libcst import matchers as m

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding
from trainprof.fix.codemod import Codemod, Site, inside, replace
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.source import values as V

ID = "item-sync"


def _what(run, line: int | None) -> str:
    if run.index is None or line is None:
        return "a GPU->CPU sync"
    calls = run.index.calls_at(line)
    for c in calls:
        if P.is_sync(c):
            return f"`{c.text}`" if len(c.text) < 60 else f"`.{c.method or c.qualname}()`"
    for c in calls:
        if P.is_logging(c):
            return f"`{c.text[:50]}` (formats a CUDA tensor)"
    if "[" in run.index.line_text(line):
        return "indexing with a data-dependent shape (boolean mask / nonzero)"
    return "a GPU->CPU sync"


def detect(run):
    n = run.n_steps
    for line, (idxs, blocked, gpu) in run.syncs.value_reads.items():
        where = line if line is not None else (run.index.loops[0].line if run.index and run.index.loops else 1)
        what = _what(run, line)
        yield Finding(
            rule=ID,
            title="GPU->CPU sync in the training loop",
            path=run.relpath(),
            line=where,
            severity="medium",
            message=f"{what} makes the CPU wait for the GPU {len(idxs) / n:.3g}x per step "
                    f"({blocked:.3g} ms blocked per step).",
            evidence=(
                Evidence("syncs per step", len(idxs) / n),
                Evidence("CPU blocked per step", blocked, "ms"),
            ),
            saving=WhatIf(
                Change(drop_syncs=frozenset(idxs), drop_gpu=frozenset(gpu)),
                basis=f"CPU time blocked in {len(idxs)} sync calls at this line over {n} steps; "
                      "replayed without the waits (later syncs absorb what is still owed)",
                confidence="high" if line is not None else "medium",
            ),
            fix=FIX.fix(),
        )


_ARRAYS = {"numpy.array", "numpy.asarray"}


def _to_host(index, c) -> bool:
    """`t.to("cpu")`, `t.to(device="cpu")`, `t.to(torch.device("cpu"))`: a device->host copy."""
    if c.method != "to" or not c.receiver:
        return False
    dev = c.args[0] if c.args else next((a.value for a in c.node.args if a.keyword and a.keyword.value == "device"), None)
    if isinstance(dev, cst.Call) and index.qualname(dev) == "torch.device" and dev.args:
        dev = dev.args[0].value
    return index.literal(dev) == "cpu" if dev is not None else False


def lint(index):
    """Static: a value read back from a tensor, every step, in the training loop."""
    tensors = V.tensor_names(index)
    for c in index.calls:
        if not index.in_loop(c.line) or P.throttled(index, c.line):
            continue
        arg = c.args[0] if len(c.args) == 1 else None
        if c.qualname in P.SYNC_BUILTINS | _ARRAYS:  # float(x): only of a tensor's value (float(t.sum()), float(loss))
            if not (isinstance(arg, cst.Call) and c.qualname in P.SYNC_BUILTINS
                    or isinstance(arg, cst.Name) and arg.value in tensors):
                continue
        elif not (P.is_sync(c) or _to_host(index, c)):
            continue
        yield Finding(
            rule=ID, title="GPU->CPU sync in the training loop", path=index.path, line=c.line, severity="medium",
            message=f"`{c.text[:60]}` runs every step: if the tensor is on the GPU, the CPU waits for the GPU "
                    "here (static: suspected; `trainprof analyze` measures the wait).",
            fix=FIX.fix(),
        )


# -- the codemod ------------------------------------------------------------------------
_ITEM = m.Call(func=m.Attribute(attr=m.Name("item")), args=[])
_INPLACE_OK = {"append", "clear"}  # list methods that do not read the values


def _mutates(site: Site, node: cst.CSTNode, name: str) -> bool:
    """Whether node rebinds `name`, assigns into it, calls an in-place method on it,
    or steps an optimizer (which changes parameters in place)."""
    for a in site.assignments(name):
        if inside(site, a, node):
            return True
    for c in m.findall(node, m.Call(func=m.Attribute())):
        attr = c.func.attr.value
        if attr == "step" or (attr.endswith("_") and not attr.startswith("_")
                              and isinstance(c.func.value, cst.Name) and c.func.value.value == name):
            return True
    return bool(m.findall(node, m.AssignTarget(target=m.Subscript(value=m.Name(name)) | m.Attribute(value=m.Name(name)))))


def _block_children(block) -> list:
    return list(block.body) if isinstance(block, (cst.IndentedBlock, cst.Module)) else []


def _common_block(site: Site, nodes: list, loop) -> tuple[cst.CSTNode, list[cst.CSTNode]] | None:
    """The innermost block (inside loop) holding every node, and the child statement of
    it that holds each node."""
    chains = []
    for n in nodes:
        chain = [a for a in site.ancestors(n) if isinstance(a, cst.IndentedBlock)]
        chain = chain[: next(i for i, a in enumerate(chain) if a is loop.body) + 1]
        chains.append(chain[::-1])  # outermost (the loop's body) first
    block = None
    for level in zip(*chains):
        if all(b is level[0] for b in level):
            block = level[0]
        else:
            break
    kids = _block_children(block)
    holders = [next(k for k in kids if inside(site, n, k)) for n in nodes]
    return block, holders


def _unconditional(site: Site, call: cst.CSTNode, stmt: cst.CSTNode) -> bool:
    """Whether call runs every time stmt runs, and before stmt's body (so the value
    can be computed just before stmt)."""
    if isinstance(stmt, cst.SimpleStatementLine):
        return not any(isinstance(a, (cst.Lambda, cst.BooleanOperation, cst.IfExp, cst.CompFor,
                                      cst.ListComp, cst.GeneratorExp, cst.SetComp, cst.DictComp))
                       for a in _between(site, call, stmt))
    header = stmt.test if isinstance(stmt, cst.If) else stmt.iter if isinstance(stmt, cst.For) else None
    return header is not None and inside(site, call, header) and _unconditional_expr(site, call, header)


def _unconditional_expr(site, call, header) -> bool:
    return not any(isinstance(a, (cst.Lambda, cst.BooleanOperation, cst.IfExp)) for a in _between(site, call, header))


def _between(site: Site, node, outer) -> list:
    out = []
    for a in site.ancestors(node):
        if a is outer:
            break
        out.append(a)
    return out


def _fresh(site: Site, base: str) -> str:
    used = {n.value for n in site.nodes(cst.Name)}
    name, k = base, 2
    while name in used:
        name, k = f"{base}{k}", k + 1
    return name


def _dedupe(site: Site, loop, mapping: dict, done: set) -> cst.Module | None:
    """`x.item()` read more than once per iteration: read it once."""
    by_name: dict[str, list] = {}
    for c in m.findall(loop.body, _ITEM):
        if isinstance(c.func.value, cst.Name) and site.training_loop_of(c) is loop and c not in done:
            by_name.setdefault(c.func.value.value, []).append(c)
    for name, calls in by_name.items():
        if len(calls) < 2 or not any(site.wanted(c) for c in calls):
            continue
        calls.sort(key=lambda c: (site.pos[c].start.line, site.pos[c].start.column))
        block, holders = _common_block(site, calls, loop)
        first = holders[0]
        kids = _block_children(block)
        span = kids[kids.index(first): kids.index(holders[-1]) + 1]
        if not _unconditional(site, calls[0], first):
            site.note(calls[0], False, f"`{name}.item()` is first read under a condition: not merged")
            continue
        if any(_mutates(site, s, name) for s in span[1:]) or _mutates_before(site, first, calls[0], name):
            site.note(calls[0], False, f"`{name}` changes between its `.item()` reads: not merged")
            continue
        var = _fresh(site, f"{name}_value")
        assign = cst.parse_statement(f"{var} = {name}.item()\n")
        mapping[first] = _InsertBefore(assign.with_changes(leading_lines=first.leading_lines))
        for c in calls:
            mapping[c] = cst.Name(var)
            done.add(c)
        site.note(calls[0], True, f"`{name}.item()` read {len(calls)}x per step: read once into `{var}`")
    return None


def _mutates_before(site: Site, stmt, call, name: str) -> bool:
    """In a one-line statement, a rebinding of name before the call (`x = f(); x.item()`)."""
    return any(inside(site, a, stmt) for a in site.assignments(name))


def _reads(site: Site, name: str, skip: set) -> list[cst.Name]:
    """Loads of `name` that are not the accumulation itself (nodes in skip)."""
    out = []
    for n in site.nodes(cst.Name):
        if n.value != name or not site.is_load(n) or any(inside(site, n, s) for s in skip):
            continue
        p = site.parent(n)
        if isinstance(p, cst.Attribute) and p.value is n and isinstance(site.parent(p), cst.Call) \
                and p.attr.value in _INPLACE_OK:
            continue
        if isinstance(p, cst.Arg) and isinstance(site.parent(p), cst.Call) and site.parent(p).func is not None \
                and isinstance(site.parent(p).func, cst.Name) and site.parent(p).func.value == "len":
            continue  # len(losses) is the same for tensors
        out.append(n)
    return out


def _read_every_step(site: Site, reads: list, loop) -> bool:
    """A read inside the loop that is not under an `if` there: a sync every step again."""
    for r in reads:
        if not inside(site, r, loop):
            continue
        if not any(isinstance(a, cst.If) and inside(site, a, loop.body)
                   and (inside(site, r, a.body) or (a.orelse is not None and inside(site, r, a.orelse)))
                   for a in _between(site, r, loop)):
            return True  # not inside an if's branch (an if's test runs every step)
    return False


def _accumulations(site: Site, loop, mapping: dict, done: set) -> None:
    """`total += t.item()` and `values.append(t.item())`: keep a detached device tensor,
    convert where the accumulator is read (float(...) is exact: .item() gives the same float)."""
    for stmt in m.findall(loop.body, m.AugAssign(target=m.Name(), operator=m.AddAssign(), value=_ITEM)):
        if not site.wanted(stmt) or site.training_loop_of(stmt) is not loop or stmt.value in done:
            continue
        name = stmt.target.value
        reads = _reads(site, name, {stmt})
        if _read_every_step(site, reads, loop):
            site.note(stmt, False, f"`{name}` is read every step: its value is needed on the host anyway")
            continue
        inits = [a for a in site.assignments(name) if not inside(site, a, loop) and a is not stmt]
        if not inits or not all(isinstance(a, cst.Assign) and isinstance(a.value, (cst.Integer, cst.Float)) for a in inits):
            site.note(stmt, False, f"`{name}` does not start as a number literal: left alone")
            continue
        # float64 on the device: the same additions, in the same order, as Python floats
        mapping[stmt.value] = cst.parse_expression(f"{site.code(stmt.value.func.value)}.detach().double()")
        for r in reads:
            mapping[r] = cst.parse_expression(f"float({name})")
        done.add(stmt.value)
        site.note(stmt, True, f"`{name}` accumulates on the device; read with float() where used")
    app = m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("append")), args=[m.Arg(value=_ITEM)])
    for call in m.findall(loop.body, app):
        if not site.wanted(call) or site.training_loop_of(call) is not loop or call.args[0].value in done:
            continue
        name = call.func.value.value
        reads = _reads(site, name, {call})
        if _read_every_step(site, reads, loop):
            site.note(call, False, f"`{name}` is read every step: its values are needed on the host anyway")
            continue
        inits = [a for a in site.assignments(name) if not inside(site, a, loop)]
        if not inits or not all(_empty_list_init(a, name) for a in inits):
            site.note(call, False, f"`{name}` does not start as an empty list: left alone")
            continue
        if any(isinstance(site.parent(r), cst.Attribute) for r in reads):
            site.note(call, False, f"`{name}` is used through a method: left alone")
            continue
        item = call.args[0].value
        mapping[item] = cst.parse_expression(f"{site.code(item.func.value)}.detach()")
        for r in reads:
            mapping[r] = cst.parse_expression(f"[float(v) for v in {name}]")
        done.add(item)
        site.note(call, True, f"`{name}` keeps detached device tensors; converted with float() where read")


def _empty_list_init(a, name: str) -> bool:
    if not isinstance(a, cst.Assign) or len(a.targets) != 1:
        return False
    t, v = a.targets[0].target, a.value
    if isinstance(t, cst.Name):
        return isinstance(v, cst.List) and not v.elements
    if isinstance(t, cst.Tuple) and isinstance(v, cst.Tuple) and len(t.elements) == len(v.elements):
        return all(isinstance(ve.value, cst.List) and not ve.value.elements
                   for te, ve in zip(t.elements, v.elements) if isinstance(te.value, cst.Name) and te.value.value == name)
    return False


class _InsertBefore:
    """Marks a statement that gets `assign` inserted before it (the comments above it move up too)."""

    def __init__(self, assign):
        self.assign = assign


class _Edits(dict):
    """replace()'s mapping: a node -> its replacement; a statement marked _InsertBefore
    -> [the assignment, the statement with its own edits and no leading lines]."""

    def get(self, node, updated):
        v = super().get(node, updated)
        if isinstance(v, _InsertBefore):
            return cst.FlattenSentinel([v.assign, updated.with_changes(leading_lines=[])])
        return v


def _transform(site: Site) -> cst.Module:
    edits, done = _Edits(), set()
    for loop in site.training_loops():
        _accumulations(site, loop, edits, done)
        _dedupe(site, loop, edits, done)
    return replace(site.module, edits)


FIX = Codemod(
    ID, "safe",
    "keep `.item()` values on the device: accumulate detached tensors, read once per step at most",
    "the same floats reach the same code: accumulators sum float64 on the device in the same order "
    "and are read with float(); a value read twice per step is read once; reads that drive control "
    "flow every step are left alone",
    _transform,
)

RULE = Rule(ID, "GPU->CPU sync in the training loop", "sync", detect, __doc__, needs=("trace", "cuda"), codemods=(FIX,),
            lint=lint, aliases=('explicit-sync',))
