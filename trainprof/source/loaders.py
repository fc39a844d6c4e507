"""Training loops fed by a DataLoader, found in the source: for the rules that reason about
the loader (its workers, its batches' copies) and for `trainprof lint`."""

from __future__ import annotations

import libcst as cst
from libcst import matchers as m

from trainprof.source import values as V
from trainprof.source.tree import positional

_WRAPS = ("enumerate", "iter")


def is_loader(index, node) -> bool:
    return isinstance(node, cst.Call) and ((index.qualname(node) or "").endswith("DataLoader")
                                           or m.matches(node.func, m.Name("DataLoader")))


def loader_loops(index) -> list:
    """(training loop's node, the DataLoader(...) cst.Call it takes batches from, the batch target)
    for each training loop fed by a DataLoader built in this file: iterated (directly, through
    enumerate/iter/tqdm/zip) or read with `batch = next(it)`, through names bound to it (in the
    loop's function, module level, `self.x`, passed in by every caller) or a function returning it."""
    out = []
    for loop in (lp.node for lp in index.loops):
        sources = [(loop.iter, loop.target)] if isinstance(loop, cst.For) else []
        sources += [(a.value.args[0].value, a.targets[0].target) for a in index.walk(loop.body)
                    if isinstance(a, cst.Assign) and len(a.targets) == 1 and isinstance(a.value, cst.Call)
                    and index.qualname(a.value) == "next" and a.value.args]
        for it, target in sources:
            for _ in range(3):  # loader -> iter(loader) -> a name for it
                while isinstance(it, cst.Call) and (args := positional(it)) and (
                        (q := index.qualname(it) or "") in _WRAPS or q.startswith("tqdm.")):
                    if q.endswith("enumerate") and isinstance(target, cst.Tuple) and len(target.elements) == 2:
                        target = target.elements[1].value
                    it = args[0] if args[0].star else args[0].value  # through `*xs`, no DataLoader is known
                if pairs := V.zipped(index, it, target):  # zip(a, b): each feeds its element of the target
                    sources += pairs  # in place: this loop over sources comes to them (zip is no loader)
                    break
                it = V.value_of(index, it)  # a name, self.x, a function returning it
            if is_loader(index, it):
                out.append((loop, it, target))
    return out


def workers_of(call: cst.Call, kw: dict):
    """num_workers as a literal int (0 when not given), or None when unknown."""
    if any(a.star for a in call.args):
        return None
    args = positional(call)
    if len(args) > 5:
        return args[5].value.evaluated_value if isinstance(args[5].value, cst.Integer) else None
    v = kw.get("num_workers", 0)
    return v if isinstance(v, int) and not isinstance(v, bool) else None
