"""The one definition of the training loop, for detectors and codemods alike.

A training loop is a loop whose body calls `.backward()` or `.step()` -- directly, or
through a function of the same file (by name) that does -- unless it runs epochs: it holds
a loop that does both, or it does neither outside the loops it holds (a loop it holds: one in
its body, or in a function of the file it calls, as `for epoch ...: train(...)`). A function
called from a training loop runs every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

STEP_METHODS = {"backward", "step"}


@dataclass(frozen=True, eq=False)
class Loop:
    line: int
    end_line: int
    header: str  # "for batch in loader:"
    iter_text: str | None
    node: cst.For | cst.While = field(repr=False)


def _function_nodes(ix) -> dict[str, cst.FunctionDef]:
    out = {}
    for n in ix.nodes(cst.FunctionDef):
        out[n.name.value] = n  # the last definition of a name, as Python binds it
    return out


def _step_calls(ix, body: cst.CSTNode, fns: dict, skip=frozenset(), seen: tuple = ()) -> set[str]:
    """Which of backward() and step() body calls, directly or through a function of the file
    (not inside the nodes in skip)."""
    found: set[str] = set()
    stack = [body]
    while stack and len(found) < len(STEP_METHODS):
        c = stack.pop()
        if c in skip:
            continue
        stack.extend(ix.tree.children.get(c, ()))
        if not isinstance(c, cst.Call):
            continue
        f = c.func
        if isinstance(f, cst.Attribute) and f.attr.value in STEP_METHODS:
            found.add(f.attr.value)
        elif isinstance(f, cst.Name) and f.value in fns and f.value not in seen:
            found |= _step_calls(ix, fns[f.value].body, fns, seen=seen + (f.value,))
    return found


def _held(ix, body: cst.CSTNode, fns: dict) -> list:
    """The nodes under body, and under the functions of the file it calls (by name, transitively)."""
    out, seen, stack = [], set(), [body]
    while stack:
        for n in ix.walk(stack.pop()):
            out.append(n)
            f = n.func if isinstance(n, cst.Call) else None
            if isinstance(f, cst.Name) and f.value in fns and f.value not in seen:
                seen.add(f.value)
                stack.append(fns[f.value].body)
    return out


def training_loops(ix) -> list[Loop]:
    """The script's training loops, in line order: loops that call backward() or step(), less
    the epoch loops around them -- one that holds a loop doing both, or whose own calls are all
    inside the loops it holds. A loop of micro-batches inside the step loop is one too, as is
    one stepping several optimizers."""
    fns = _function_nodes(ix)
    calls = {n: _step_calls(ix, n.body, fns) for n in ix.nodes((cst.For, cst.While))}
    cands = {n for n, c in calls.items() if c}
    out = []
    for node in cands:
        inner = {m for m in _held(ix, node.body, fns) if m is not node and m in cands}
        if inner and (any(len(calls[m]) == len(STEP_METHODS) for m in inner)
                      or not _step_calls(ix, node.body, fns, skip=inner)):
            continue  # an epoch loop
        it = ix.code(node.iter) if isinstance(node, cst.For) else None
        line = ix.line(node)
        out.append(Loop(line, ix.end_line(node), ix.line_text(line), it, node))
    return sorted(out, key=lambda lp: lp.line)


def loop_functions(ix) -> set[str]:
    """Functions of this file called, directly or through each other, from a training loop or a
    framework's step hook (ix.hooks: those hooks, which are in the set too)."""
    found: set[str] = set(ix.hooks)
    spans = [(lp.line, lp.end_line) for lp in ix.loops] + [ix.functions[h] for h in ix.hooks]
    frontier = [c for c in ix.calls if any(a <= c.line <= b for a, b in spans)]
    while frontier:
        nxt = []
        for c in frontier:
            f = c.node.func
            name = f.value if isinstance(f, cst.Name) else None
            if name in ix.functions and name not in found:
                found.add(name)
                lo, hi = ix.functions[name]
                nxt += [d for d in ix.calls if lo <= d.line <= hi]
        frontier = nxt
    return found


def loop_of(ix, node: cst.CSTNode) -> Loop | None:
    """The training loop holding node (the innermost), if any."""
    loops = {id(lp.node): lp for lp in ix.loops}
    for a in ix.ancestors(node):
        if id(a) in loops:
            return loops[id(a)]
    return None

