"""Host->device copies that block the training thread: `.to(device)` / `.cuda()` without `non_blocking=True`, or from pageable memory.

## What it does
Finds host->device copies in the training loop that make the CPU wait: copies
from pageable (not pinned) memory, and copies followed by a stream sync because
`non_blocking` was not set. Measures copies per step, bytes, and CPU time blocked.
`trainprof lint` suspects copies of a DataLoader's batches (however the loop gets
them: iterated, zipped with another loader, `next(it)`, a loader passed into the
training function) and of
tensors built on the host, each step, without `non_blocking=True` or unpinned.

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

import libcst as cst
from libcst import matchers as m
from libcst.metadata import Assignment, ScopeProvider

from trainprof.estimate import Change, WhatIf
from trainprof.finding import STATIC, Evidence, Finding
from trainprof.fix.codemod import (Codemod, Site, before, inside, is_true, kwarg, move_device, mutations, replace, with_kwarg)
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.source import values as V
from trainprof.source.loaders import loader_loops
from trainprof.source.tree import constant, positional
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


def _host_alloc_line(run, line) -> bool:
    """Copies of tensors built on this same line belong to host-alloc."""
    return run.index is not None and line is not None and any(P.is_factory(c) for c in run.index.calls_at(line))


def detect(run):
    tr, n = run.trace, run.n_steps
    gpu_of = M.gpu_by_correlation(tr)
    calls = [int(i) for i in (M.memcpy_calls(tr) & run.main).nonzero()[0]]
    h2d = []
    for c in calls:
        gs = gpu_of.get(int(tr.corr[c]), [])
        kinds = [M.copy_kind(tr.name(g)) for g in gs]
        if any(k and k[0] == "HtoD" for k in kinds):
            h2d.append((c, gs, any(k and k[1] == "pageable" for k in kinds)))
    if not h2d:
        return
    waits = {s.copy_call: s.idx for s in run.syncs.events if s.kind == "h2d"}
    by_line: dict = {}
    for c, gs, pageable in h2d:
        by_line.setdefault(run.script_line(c), []).append((c, gs, pageable))
    for line, items in by_line.items():
        if _host_alloc_line(run, line):
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
        where = line if line is not None else (run.index.loops[0].line if run.index and run.index.loops else 1)
        yield Finding(
            rule=ID,
            title="Blocking host->device copy",
            path=run.relpath(),
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
            saving=WhatIf(
                Change(remove_cpu=staging, drop_syncs=frozenset(syncs), gpu_scale=faster),
                basis="sync waits after these copies and the CPU staging of pageable copies, replayed away; "
                      f"pageable copies replayed at the pinned bandwidth ({pin_gbps:.0f} GB/s)",
            ),
            fix=FIX.fix("pin_memory=True on the DataLoader and .to(device, non_blocking=True)"),
        )


# -- the codemod ------------------------------------------------------------------------
# Helpers shared with rules/host_alloc.py (candidates for trainprof/fix/codemod.py).

_LOADERS = {"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"}
# iterables that yield the loader's batches unchanged
_PASS = {"iter", "tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.notebook.tqdm", "tqdm.std.tqdm"}
_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_PIN_POSITION = 7  # DataLoader(dataset, batch_size, shuffle, sampler, batch_sampler, num_workers, collate_fn, pin_memory)


def _names(target: cst.CSTNode) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for e in target.elements for n in _names(e.value)}
    return _names(target.value) if isinstance(target, cst.StarredElement) else set()


def _batch_source(site: Site, scopes, call: cst.Call, name: str):
    """(the for loop that binds `name` to a batch, its DataLoader(...) call) or (None, why)."""
    loop = None
    for a in site.ancestors(call):
        if isinstance(a, _SCOPES):
            return None, "the copy is in a nested function or comprehension"
        if isinstance(a, cst.For) and name in _names(a.target):
            loop = a
            break
    if loop is None or not inside(site, call, loop.body):
        return None, f"`{name}` is not bound by a for loop around the copy"
    it, target = loop.iter, loop.target
    while isinstance(it, cst.Call) and it.args and site.qualname(it) in _PASS | {"enumerate"}:
        if site.qualname(it) == "enumerate":
            if not isinstance(target, cst.Tuple) or len(target.elements) != 2:
                return None, "an enumerate() loop whose target is not `i, batch`"
            target = target.elements[1].value
        it = it.args[0].value
    if name not in _names(target):
        return None, f"`{name}` is not a batch of the loop"
    if isinstance(it, cst.Name):
        binds = scopes[it][it.value] if it in scopes else ()
        a = next(iter(binds)) if len(binds) == 1 else None
        p = site.parent(a.node) if isinstance(a, Assignment) else None
        s = site.parent(p) if isinstance(p, cst.AssignTarget) else None
        it = s.value if isinstance(s, cst.Assign) and len(s.targets) == 1 else it
    if not (isinstance(it, cst.Call) and site.qualname(it) in _LOADERS):
        return None, f"`{site.code(loop.iter)}` is not a DataLoader built once in this file"
    for b in site.assignments(name):  # the batch rebound before the copy (`x = x.half()`) is pageable again
        if b is not loop and inside(site, b, loop.body) and not inside(site, call, b) and before(site, b, call):
            return None, f"`{name}` is rebound in the loop before the copy"
    return loop, it


def _pinned(site: Site, dl: cst.Call) -> tuple[cst.Call | None, str]:
    """The DataLoader call with pin_memory=True (itself if already), or (None, why not)."""
    pin = kwarg(dl, "pin_memory")
    if is_true(pin):
        return dl, "already pin_memory=True"
    if pin is not None and not m.matches(pin.value, m.Name("False")):
        return None, f"pin_memory={site.code(pin.value)} left as is"
    if pin is None and (any(a.star for a in dl.args) or sum(a.keyword is None for a in dl.args) > _PIN_POSITION):
        return None, "DataLoader(...) has *args/**kwargs or a positional pin_memory: left as is"
    return with_kwarg(dl, "pin_memory", "True"), "pin_memory=True"


def _transform(site: Site) -> cst.Module:
    scopes = site.index.wrapper.resolve(ScopeProvider)
    edits: dict = {}
    noted = set()
    for call in site.nodes(cst.Call):
        if not (isinstance(call.func, cst.Attribute) and site.wanted(call)):
            continue
        meth = call.func.attr.value
        if meth in ("cpu", "numpy") and site.lines is not None:
            site.note(call, False, f"`.{meth}()` is a device->host copy read on the CPU: never non_blocking")
        if meth not in ("to", "cuda") or (site.lines is None and not any(isinstance(a, cst.For) for a in site.ancestors(call))):
            continue  # --static: only copies in loops are worth a note
        nb = kwarg(call, "non_blocking")
        if is_true(nb):
            site.note(call, False, "already non_blocking=True")
            continue
        kind, _, why = move_device(site, call)
        if kind == "cpu":
            why = "a copy to the CPU (device->host when the tensor is on the GPU): never non_blocking"
        elif nb is not None and not m.matches(nb.value, m.Name("False")):
            why = f"non_blocking={site.code(nb.value)} left as is"
        if why:
            site.note(call, False, why)
            continue
        recv = call.func.value
        base = recv.value if isinstance(recv, cst.Subscript) else recv  # batch[0], batch["x"]: pinned too
        loop, dl = _batch_source(site, scopes, call, base.value) if isinstance(base, cst.Name) else \
            (None, "not a batch straight from a DataLoader")
        if loop is None:
            site.note(call, False, f"{dl}: not known to be pinned, and from pageable memory non_blocking gains nothing")
            continue
        stmt = site.statement(call)
        rebinds = isinstance(stmt, cst.SimpleStatementLine) and any(
            isinstance(s, cst.Assign) and any(base.value in _names(t.target) for t in s.targets) for s in stmt.body)
        if not rebinds and any(before(site, call, x) for x in mutations(site, loop.body, base.value)):
            site.note(call, False, f"`{base.value}` is changed in place after the copy: an async copy could read the new values")
            continue
        new_dl, how = _pinned(site, edits.get(dl, dl))
        if new_dl is None and dl not in noted:  # the copy is still rewritten: pinned or not, it stays correct
            site.note(dl, False, how)
        elif new_dl is not None and new_dl is not dl and dl not in edits:
            edits[dl] = new_dl
            site.note(dl, True, how)
        noted.add(dl)
        edits[call] = with_kwarg(call, "non_blocking", "True")
        site.note(call, True, f"`{site.code(call)}`: non_blocking=True" + (
            " (a batch of a pinned DataLoader)" if new_dl is not None else f" (pinned only where {how.split(' left')[0]})"))
    return replace(site.module, edits)


FIX = Codemod(
    ID, "safe",
    "pin_memory=True on the DataLoader and non_blocking=True on the host->device copies of its batches",
    "a host->device copy on the current stream is ordered before every kernel that reads its result, so "
    "the values are the same; only copies of batches straight from a DataLoader in this file are changed "
    "(never one to the CPU, nor one whose host tensor is changed in place after it), and pinning just "
    "changes where the batch's host memory lives",
    _transform,
)

# -- static detection (`trainprof lint`) ------------------------------------------------
def _ids(index, node) -> set[str]:
    """The variable names under an expression: not `.attr`, keywords,
    parameters, nor True/False/None."""
    out = set()
    for n in index.walk(node):
        p = index.parent(n)
        if isinstance(n, cst.Name) and n.value not in ("True", "False", "None") and not (
                isinstance(p, cst.Attribute) and p.attr is n or isinstance(p, cst.Arg) and p.keyword is n
                or isinstance(p, cst.Param) and p.name is n):
            out.add(n.value)
    return out


def _root(node) -> str | None:
    """The name an expression hangs off: x in `x`, `x["a"]`, `x.a`, `x.float()`."""
    while isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
        node = node.func if isinstance(node, cst.Call) else node.value
    return node.value if isinstance(node, cst.Name) else None


def _to_host_or_dtype(index, c) -> bool:
    """`.to("cpu")`, `.to(torch.float16)`, `.to(dtype=...)`: not a host->device copy."""
    if c.method != "to":
        return False
    args = positional(c.node)
    if not args:
        return "device" not in c.keywords
    if args[0].star:  # `.to(*xs)`: taken for a copy
        return False
    a = args[0].value
    v = index.literal(a) if constant(a) else ...
    if v is not ...:
        return not (isinstance(v, str) and v.startswith("cuda"))
    q = "" if isinstance(a, cst.Call) else index.qualname(a) or ""  # the name itself, not what a call returns
    return q.startswith("torch.") and q != "torch.device"


def _unpinned(call: cst.Call, kw: dict) -> bool:
    """Whether the DataLoader's pin_memory is a literal False or left out (at its position or by keyword)."""
    args = positional(call)
    if len(args) > _PIN_POSITION:
        return m.matches(args[_PIN_POSITION], m.Arg(value=m.Name("False"), star=""))
    if "pin_memory" not in kw and any(a.star for a in call.args):
        return False  # `**kwargs` may pin: unknown
    return kw.get("pin_memory", False) is False


def lint(index):
    """Static: batches of a DataLoader, or tensors built on the host, copied to the device from
    pageable memory or with a blocking copy, every step."""
    site_of = {c.node: c for c in index.calls}
    seen = set()
    for loop, dl, target in loader_loops(index):
        body = [n for stmt in loop.body.body for n in index.walk(stmt)]  # in source order
        batch = _ids(index, target)
        for a in body:  # x, y = batch / x = batch["x"] / [t.to(dev) for t in batch]
            if isinstance(a, cst.Assign) and isinstance(a.value, (cst.Name, cst.Subscript, cst.Attribute, cst.Tuple)):
                vals = [e.value if isinstance(e, cst.Element) else e for e in a.value.elements] \
                    if isinstance(a.value, cst.Tuple) else [a.value]
                if vals and all(isinstance(v, (cst.Name, cst.Subscript, cst.Attribute)) and _root(v) in batch for v in vals):
                    batch |= {n for t in a.targets for n in _ids(index, t.target)}
            elif isinstance(a, cst.CompFor) and _root(a.iter) in batch:
                batch |= _ids(index, a.target)
        pinned = not _unpinned(dl, site_of[dl].keywords)  # not a literal: unknown, not flagged
        for node in body:
            c = site_of.get(node)
            if c is None or not P.is_to_device(c) or _root(node.func.value) not in batch \
                    or _to_host_or_dtype(index, c) or P.throttled(index, c.line) or c.line in seen:
                continue
            nb = c.keywords.get("non_blocking", False) is not False
            if nb and pinned:
                continue
            seen.add(c.line)
            missing = ([] if nb else ["non_blocking=True"]) + (
                [] if pinned else [f"pin_memory=True on the DataLoader at line {index.line(dl)}"])
            yield Finding(
                rule=ID, title="Blocking host->device copy", path=index.path, line=c.line, severity="low",
                message=f"`{c.text[:60]}` copies a batch to the device every step without "
                        f"{' and '.join(missing)}: the CPU waits for the copy ({STATIC}).",
                fix=FIX.fix(),
            )
    # tensors built on the host (a copy in the factory's own expression is host-alloc's)
    for h in V.host_copies(index):
        c = h.copy
        if h.same or (h.pinned and h.non_blocking) or c.line in seen:
            continue
        seen.add(c.line)
        yield Finding(
            rule=ID, title="Blocking host->device copy", path=index.path, line=c.line, severity="low",
            message=f"`{c.text[:60]}` copies a tensor built on the host (line {h.factory.line}) to the device every "
                    "step " + ("from pageable memory: non_blocking=True does nothing without .pin_memory()"
                               if h.non_blocking else "with a blocking copy: the CPU waits for the GPU and the copy")
                    + f" ({STATIC}).",
            fix=FIX.fix("build it on the device, or in the DataLoader (pin_memory=True) and copy it non_blocking"),
        )


RULE = Rule(ID, "Blocking host->device copy", "copy", detect, __doc__, needs=("trace", "cuda"), codemods=(FIX,),
            lint=lint)

