"""One walk over a libcst module, kept: every node's parent and children and the nodes of
each type in source order, so that detectors walk the tree as often as they like without
libcst's visitor machinery each time. Plus literal values of expressions."""

from __future__ import annotations

from typing import Iterator

import libcst as cst


class _Collect(cst.CSTVisitor):
    def __init__(self):
        super().__init__()
        self.stack: list[cst.CSTNode] = []
        self.parent: dict = {}
        self.children: dict = {}
        self.order: list[cst.CSTNode] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.stack:
            p = self.stack[-1]
            self.parent[node] = p
            self.children.setdefault(p, []).append(node)
        self.order.append(node)
        self.stack.append(node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        self.stack.pop()


class Nodes:
    """The module's nodes, walked once: parent, children, and by type, in source order."""

    def __init__(self, module: cst.Module):
        c = _Collect()
        module.visit(c)
        self.parent: dict = c.parent
        self.children: dict = c.children
        self._order = c.order
        self._by_type: dict = {}
        for n in c.order:
            self._by_type.setdefault(type(n), []).append(n)
        self._cache: dict = {}

    def of(self, kind) -> list:
        """The nodes of a type (or a tuple of types, or a base class), in source order."""
        key = kind if isinstance(kind, tuple) else (kind,)
        if key not in self._cache:
            types = [t for t in self._by_type if issubclass(t, key)]
            if len(types) == 1:
                self._cache[key] = list(self._by_type[types[0]])
            else:
                want = set(types)
                self._cache[key] = [n for n in self._order if type(n) in want]
        return self._cache[key]

    def walk(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """node and every node below it, in source order."""
        stack = [node]
        while stack:
            n = stack.pop()
            yield n
            kids = self.children.get(n)
            if kids:
                stack.extend(reversed(kids))

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        p = self.parent.get(node)
        while p is not None:
            yield p
            p = self.parent.get(p)


_CONSTANTS = {"True": True, "False": False, "None": None}


def positional(call: cst.Call) -> list[cst.Arg]:
    """A call's positional arguments, a `*xs` among them (`**kw` is not one)."""
    return [a for a in call.args if a.keyword is None and a.star != "**"]


def constant(node: cst.CSTNode | None) -> bool:
    """Whether node is a lone literal: a number, a string (not an f-string), True/False/None,
    or `...` -- not `-1` nor a tuple (what Python's ast calls a Constant)."""
    if isinstance(node, cst.ConcatenatedString):
        return node.evaluated_value is not None  # None: an f-string among the parts
    return isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis)) or (
        isinstance(node, cst.Name) and node.value in _CONSTANTS)


def literal(node: cst.CSTNode | None):
    """The value of a literal expression (numbers, strings, True/False/None, and tuples,
    lists, sets and dicts of those), else ... (Ellipsis) -- ast.literal_eval's reach."""
    if node is None:
        return ...
    if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary)):
        return node.evaluated_value
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        v = node.evaluated_value
        return ... if v is None else v
    if isinstance(node, cst.Name) and node.value in _CONSTANTS:
        return _CONSTANTS[node.value]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
        v = literal(node.expression)
        if isinstance(v, (int, float, complex)) and not isinstance(v, bool):
            return -v if isinstance(node.operator, cst.Minus) else v
        return ...
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        vals = []
        for e in node.elements:
            if isinstance(e, cst.StarredElement):
                return ...
            v = literal(e.value)
            if v is ...:
                return ...
            vals.append(v)
        return tuple(vals) if isinstance(node, cst.Tuple) else vals if isinstance(node, cst.List) else _set(vals)
    if isinstance(node, cst.Dict):
        out = {}
        for e in node.elements:
            if not isinstance(e, cst.DictElement):
                return ...
            k, v = literal(e.key), literal(e.value)
            if k is ... or v is ...:
                return ...
            try:
                out[k] = v
            except TypeError:  # an unhashable key: not a literal dict
                return ...
        return out
    return ...


def _set(vals: list):
    try:
        return set(vals)
    except TypeError:
        return ...
