"""Whether a DataLoader(...) call can be given worker processes: what the dataloader-config
codemod checks before it adds num_workers. Spawned workers (macOS, Windows) import the module
and unpickle the dataset; an IterableDataset must split its stream among them."""

from __future__ import annotations

import libcst as cst
from libcst import matchers as m

from .codemod import Site

_MAIN_GUARD = ('__name__=="__main__"', '"__main__"==__name__')
_RERUN = ": spawned workers (macOS, Windows) import the module and would run the training again"



def function_of(tree, node):
    """The innermost function around node (None: module level); tree: the Site or the index."""
    return next((a for a in tree.ancestors(node) if isinstance(a, cst.FunctionDef)), None)


def _main_guard(site: Site, node) -> bool:
    return isinstance(node, cst.If) and "".join(site.code(node.test).split()).replace("'", '"') in _MAIN_GUARD


def _reruns_on_import(site: Site, call: cst.Call) -> str | None:
    """Why importing the module (what spawn does in each worker: macOS, Windows) would build
    the loader, and so run the training, again; None if only `__main__` runs it."""
    if any(_main_guard(site, a) for a in site.ancestors(call)):
        return None
    if function_of(site, call) is None:
        return "built at module level outside `if __name__ == \"__main__\":`" + _RERUN
    defs = {s.name.value: s for s in site.module.body if isinstance(s, (cst.FunctionDef, cst.ClassDef))}
    top = [s for s in site.module.body if not isinstance(s, (cst.FunctionDef, cst.ClassDef)) and not _main_guard(site, s)]
    outer = next(a for a in [call, *site.ancestors(call)] if site.parent(a) is site.module)
    if not isinstance(outer, (cst.FunctionDef, cst.ClassDef)):
        return "built in a function defined under a module-level `if`/`try`: cannot tell whether " \
               "importing the module (as spawned workers do) builds it"
    runs = {outer.name.value}  # the module-level function (or class) that builds it, and those that call it
    while True:
        more = {n for n, d in defs.items() if n not in runs and any(
            isinstance(c.func, cst.Name) and c.func.value in runs for c in m.findall(d, m.Call()))}
        if not more:
            break
        runs |= more
    for s in top:
        for c in m.findall(s, m.Call()):
            if isinstance(c.func, cst.Name) and c.func.value in runs:
                return f"`{c.func.value}()` runs at import time, outside `if __name__ == \"__main__\":`" + _RERUN
    return None


def _unpicklable(site: Site, call: cst.Call) -> str | None:
    """Why spawned workers could not receive the dataset (or collate_fn...), or None."""
    local = {d.name.value for d in site.nodes((cst.FunctionDef, cst.ClassDef)) if function_of(site, d)}
    exprs = [a.value for a in call.args]
    exprs += [a.value for e in exprs if isinstance(e, cst.Name) for a in site.assignments(e.value)
              if isinstance(a, cst.Assign) and a.value is not call]  # ds = Local(...); DataLoader(ds)
    for e in exprs:
        if m.findall(e, m.Lambda()):
            return f"a lambda (`{site.code(e)}`) does not pickle: spawned workers cannot receive it"
        names = {n.value for n in m.findall(e, m.Name())} & local
        if names:
            return f"`{sorted(names)[0]}` is defined inside a function: spawned workers cannot unpickle it"
    return None


def _streams(site: Site, call: cst.Call) -> str | None:
    """An IterableDataset of this file that does not split its stream by worker."""
    ds = call.args[0].value if call.args and call.args[0].keyword is None else next(
        (a.value for a in call.args if a.keyword and a.keyword.value == "dataset"), None)
    if isinstance(ds, cst.Name):
        binds = [a.value for a in site.assignments(ds.value) if isinstance(a, cst.Assign)]
        ds = binds[0] if len(binds) == 1 else ds
    if not isinstance(ds, cst.Call) or not isinstance(ds.func, cst.Name):
        return None
    for c in site.nodes(cst.ClassDef):
        if c.name.value == ds.func.value and not m.findall(c, m.Name("get_worker_info")) \
                and any((site.qualname(b.value) or "").endswith("IterableDataset") for b in c.bases):
            return f"`{c.name.value}` is an IterableDataset that ignores get_worker_info(): " \
                   "each worker would yield all of it"
    return None


def why_not_workers(site: Site, call: cst.Call) -> str | None:
    """Why workers cannot be added to this DataLoader call, or None."""
    return _reruns_on_import(site, call) or _unpicklable(site, call) or _streams(site, call)
