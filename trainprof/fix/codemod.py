"""What a codemod is, and the libcst helpers the rules' codemods share.

A codemod lives in its rule's file (rules/<rule>.py) and is declared there:

    FIX = Codemod("zero-grad", "safe", "zero_grad(set_to_none=False) -> zero_grad()", why, transform)

`transform(site)` returns the new module. `site.index` is the file's one parse (the same
index the detectors read). It acts only on nodes at `site.lines`
(the lines the analysis found; None with --static: wherever the pattern is),
and says per site what it did or why it left the code alone (`site.note`).
Nothing is reformatted: libcst prints untouched code back byte for byte, and the
helpers here edit only the nodes they must (a keyword added to a call keeps the
call's layout: one line, or one argument per line with a trailing comma).
Names are matched by qualified name, so `import torch as T; T.zeros(...)` counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

import libcst as cst
from libcst import matchers as m
from libcst.metadata import ExpressionContext, ExpressionContextProvider

from ..finding import Fix, Safety
from ..source import SourceIndex
from ..source.loops import loop_of


@dataclass(frozen=True)
class Codemod:
    id: str  # the fix id: `trainprof apply --fix ID`
    safety: Safety  # safe: results bit-identical; unsafe: review what `check` says
    summary: str  # one line: what it rewrites
    check: str  # safe: why results stay the same; unsafe: what to check before keeping it
    transform: Callable[["Site"], cst.Module]

    def fix(self, summary: str | None = None, **params) -> Fix:
        """The Fix a finding carries when this codemod can apply it."""
        return Fix(self.id, self.safety, summary or self.summary, params)


@dataclass
class Note:
    line: int
    applied: bool
    text: str


@dataclass
class Site:
    """What a codemod is given: the file's index (its one parse: positions, qualified
    names, parents, the training loops), where to act, and the findings' parameters (e.g.
    a logging period) by line."""

    index: SourceIndex
    lines: set[int] | None = None  # None: everywhere the pattern is (--static)
    params: dict[int, dict] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)

    @property
    def module(self) -> cst.Module:
        return self.index.module

    @property
    def pos(self) -> dict:
        return self.index.pos

    # -- where ----------------------------------------------------------------------
    def line(self, node: cst.CSTNode) -> int:
        return self.pos[node].start.line

    def wanted(self, node: cst.CSTNode) -> bool:
        """Whether node is where a finding points (any line it spans), or --static."""
        if self.lines is None:
            return True
        p = self.pos[node]
        return any(p.start.line <= ln <= p.end.line for ln in self.lines)

    def param(self, node: cst.CSTNode, key: str, default=None):
        p = self.pos[node]
        for ln, d in self.params.items():
            if p.start.line <= ln <= p.end.line and key in d:
                return d[key]
        return default

    def note(self, node_or_line, applied: bool, text: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else self.line(node_or_line)
        self.notes.append(Note(line, applied, text))

    # -- what -----------------------------------------------------------------------
    def qualname(self, node: cst.CSTNode) -> str | None:
        """The dotted name a call or name refers to (`T.zeros` -> torch.zeros; builtins bare:
        `enumerate`), or None."""
        return self.index.qualname(node)

    def is_load(self, name: cst.Name) -> bool:
        """Whether this Name reads the variable (not a binding, an attribute or a keyword)."""
        return self.index.wrapper.resolve(ExpressionContextProvider).get(name) == ExpressionContext.LOAD

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.index.parent(node)

    def ancestors(self, node: cst.CSTNode) -> Iterable[cst.CSTNode]:
        return self.index.ancestors(node)

    def statement(self, node: cst.CSTNode) -> cst.CSTNode:
        """The statement holding node (a SimpleStatementLine or a compound statement)."""
        for a in [node, *self.ancestors(node)]:
            if isinstance(a, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                return a
        raise ValueError("node outside any statement")

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def nodes(self, kind) -> list:
        """Every node of this type in the module, in source order."""
        return self.index.nodes(kind)

    def training_loops(self) -> list[cst.CSTNode]:
        """The training loops (source/loops.py: the one definition), innermost first."""
        return sorted((lp.node for lp in self.index.loops), key=lambda n: -len(list(self.ancestors(n))))

    def training_loop_of(self, node: cst.CSTNode) -> cst.CSTNode | None:
        lp = loop_of(self.index, node)
        return lp.node if lp is not None else None

    def assignments(self, name: str) -> list[cst.CSTNode]:
        """Statements that bind `name` (=, +=, for targets, with ... as), in source order."""
        out = []
        for n in self.nodes((cst.Assign, cst.AugAssign, cst.AnnAssign, cst.For, cst.WithItem)):
            targets = ([t.target for t in n.targets] if isinstance(n, cst.Assign)
                       else [n.target] if isinstance(n, (cst.AugAssign, cst.AnnAssign, cst.For))
                       else [n.asname.name] if n.asname else [])
            if any(name in _bound_names(t) for t in targets):
                out.append(n)
        return out

    def device_kind(self, expr: cst.BaseExpression, depth: int = 0) -> str | None:
        """'cuda', 'cpu', 'cuda-or-cpu' for a device expression the codemod can reason
        about (a literal, torch.device(literal), `"cuda" if torch.cuda.is_available()
        else "cpu"`, or a name bound once to one of those); None otherwise."""
        if depth > 4:
            return None
        if isinstance(expr, cst.SimpleString):
            v = expr.evaluated_value
            return "cuda" if v == "cuda" or v.startswith("cuda:") else "cpu" if v == "cpu" else None
        if isinstance(expr, cst.Call) and self.qualname(expr) == "torch.device" and expr.args:
            return self.device_kind(expr.args[0].value, depth + 1)
        if isinstance(expr, cst.Call) and self.qualname(expr) == "torch.cuda.current_device":
            return "cuda"
        if isinstance(expr, cst.IfExp):
            a, b = self.device_kind(expr.body, depth + 1), self.device_kind(expr.orelse, depth + 1)
            if a and b:
                return a if a == b else "cuda-or-cpu"
            return None
        if isinstance(expr, cst.Name):
            binds = self.assignments(expr.value)
            if len(binds) == 1 and isinstance(binds[0], cst.Assign) and len(binds[0].targets) == 1 \
                    and isinstance(binds[0].targets[0].target, cst.Name):
                return self.device_kind(binds[0].value, depth + 1)
        return None


def _bound_names(target: cst.CSTNode) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for e in target.elements for n in _bound_names(e.value)}
    if isinstance(target, cst.StarredElement):
        return _bound_names(target.value)
    return set()


def _calls_method(node: cst.CSTNode, methods: tuple[str, ...]) -> bool:
    return bool(m.findall(node, m.Call(func=m.Attribute(attr=m.OneOf(*[m.Name(x) for x in methods])))))


# -- editing ---------------------------------------------------------------------------
def kwarg(call: cst.Call, name: str) -> cst.Arg | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == name:
            return a
    return None


def is_true(arg: cst.Arg | None) -> bool:
    return arg is not None and isinstance(arg.value, cst.Name) and arg.value.value == "True"


def with_kwarg(call: cst.Call, name: str, value: str) -> cst.Call:
    """call with `name=value` added (or its value replaced), keeping the call's layout:
    on the last argument's line, or on a line of its own where each argument has one;
    a comment after the last argument stays on that argument's line."""
    new_value = cst.parse_expression(value)
    old = kwarg(call, name)
    if old is not None:
        return call.with_deep_changes(old, value=new_value)
    new = cst.Arg(value=new_value, keyword=cst.Name(name),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    args = list(call.args)
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    PW = cst.ParenthesizedWhitespace
    seps = [a.comma.whitespace_after for a in args[:-1] if isinstance(a.comma, cst.Comma)]
    if len(args) > 1:
        like = seps[-1] if len(seps) == len(args) - 1 and all(isinstance(w, PW) for w in seps) else None
    else:
        like = call.whitespace_before_args if isinstance(call.whitespace_before_args, PW) else None
    bare = cst.TrailingWhitespace()
    if isinstance(last.comma, cst.Comma):
        lw = last.comma.whitespace_after
        if like is not None and isinstance(lw, PW):
            # trailing comma, one argument per line: the new one closes the call
            args[-1] = last.with_changes(comma=last.comma.with_changes(
                whitespace_after=lw.with_changes(empty_lines=[], indent=like.indent, last_line=like.last_line)))
            args.append(new.with_changes(comma=cst.Comma(whitespace_after=lw.with_changes(first_line=bare,
                                                                                          empty_lines=[]))))
        else:  # f(a, b, ): on the same line
            args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            args.append(new.with_changes(comma=last.comma))
    elif like is not None:
        # one argument per line, no trailing comma: a line of its own, like the others
        wa = last.whitespace_after_arg
        if isinstance(wa, PW):  # the line break (and a comment) before `)`
            args[-1] = last.with_changes(whitespace_after_arg=cst.SimpleWhitespace(""), comma=cst.Comma(
                whitespace_after=wa.with_changes(empty_lines=[], indent=like.indent, last_line=like.last_line)))
            args.append(new.with_changes(whitespace_after_arg=wa.with_changes(first_line=bare, empty_lines=[])))
        else:
            args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=like.with_changes(first_line=bare,
                                                                                           empty_lines=[])))
            args.append(new)
    else:
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        args.append(new)
    return call.with_changes(args=args)


def without_kwarg(call: cst.Call, name: str) -> cst.Call:
    """call with keyword `name` removed, keeping the others' layout."""
    args = list(call.args)
    k = next(i for i, a in enumerate(args) if a.keyword is not None and a.keyword.value == name)
    removed = args.pop(k)
    if args and k == len(args):  # it was the last: the new last one takes its comma (or none)
        args[-1] = args[-1].with_changes(comma=removed.comma)
    return call.with_changes(args=args)


class Replace(cst.CSTTransformer):
    """Replace nodes by identity (old node -> new node, or a FlattenSentinel of statements)."""

    def __init__(self, mapping: dict):
        super().__init__()
        self.mapping = mapping

    def on_leave(self, original_node, updated_node):
        return self.mapping.get(original_node, updated_node)


def replace(module: cst.Module, mapping: dict) -> cst.Module:
    return module.visit(Replace(mapping)) if mapping else module


def add_import(module: cst.Module, name: str) -> cst.Module:
    """`import name` after the module's last top-level import, unless it is imported."""
    body = list(module.body)
    last = -1
    for i, s in enumerate(body):
        if isinstance(s, cst.SimpleStatementLine) and any(isinstance(x, (cst.Import, cst.ImportFrom)) for x in s.body):
            for x in s.body:
                if isinstance(x, cst.Import) and any(a.evaluated_name == name and a.asname is None for a in x.names):
                    return module
            last = i
    stmt = cst.parse_statement(f"import {name}\n")
    body.insert(last + 1, stmt)
    return module.with_changes(body=body)


# -- shared by several rules' codemods -------------------------------------------------
def inside(site: Site, node: cst.CSTNode, outer: cst.CSTNode) -> bool:
    return node is outer or any(a is outer for a in site.ancestors(node))


def before(site: Site, a: cst.CSTNode, b: cst.CSTNode) -> bool:
    pa, pb = site.pos[a].start, site.pos[b].start
    return (pa.line, pa.column) < (pb.line, pb.column)


def move_device(site: Site, call: cst.Call) -> tuple[str | None, cst.BaseExpression | None, str]:
    """For `t.to(...)` / `t.cuda(...)` that only moves t (a device, maybe non_blocking):
    (device kind, device expression or None for a bare `.cuda()`, ''); else (None, None, why)."""
    meth = call.func.attr.value
    pos = [a for a in call.args if a.keyword is None]
    kws = {a.keyword.value: a for a in call.args if a.keyword is not None}
    if any(a.star for a in pos) or set(kws) - {"device", "non_blocking"} or len(pos) + ("device" in kws) > 1:
        return None, None, f"`.{meth}(...)` does more than move the tensor (dtype or other arguments)"
    dev = pos[0].value if pos else kws["device"].value if "device" in kws else None
    if meth == "cuda" and (dev is None or isinstance(dev, cst.Integer)):
        return "cuda", dev, ""
    if dev is None:
        return None, None, "`.to()` names no device"
    kind = site.device_kind(dev)
    if kind is None or (meth == "cuda" and kind != "cuda"):
        return None, None, f"`{site.code(dev)}` is not a device the codemod can reason about"
    return kind, dev, ""


def mutations(site: Site, within: cst.CSTNode, name: str) -> list[cst.CSTNode]:
    """Where `within` changes the tensor `name` in place: `name.x_()`, `name[i] = v`,
    `name.a = v`, `name += v`, `f_(name)`, `f(name, inplace=True)`, `f(..., out=name)`."""
    part = m.Subscript(value=m.Name(name)) | m.Attribute(value=m.Name(name))
    is_it = m.Name(name) | part
    out = []
    for n in m.findall(within, m.Call() | m.AssignTarget(target=part) | m.AugAssign(target=is_it)):
        if not isinstance(n, cst.Call):
            out.append(n)
            continue
        f = n.func.attr.value if isinstance(n.func, cst.Attribute) else n.func.value if isinstance(n.func, cst.Name) else ""
        inplace = f.endswith("_") and not f.startswith("_")
        if inplace and isinstance(n.func, cst.Attribute) and m.matches(n.func.value, is_it):
            out.append(n)
        elif (inplace or is_true(kwarg(n, "inplace"))) and any(m.matches(a.value, m.Name(name)) for a in n.args):
            out.append(n)
        elif m.matches(kwarg(n, "out"), m.Arg(value=m.Name(name))):
            out.append(n)
    return out


_MOVES = ("to", "cuda", "cpu")


def torch_name(site: Site) -> str | None:
    """The name the module binds torch to (`import torch as T` -> "T"), or None."""
    for imp in site.nodes(cst.Import):
        for a in imp.names:
            if a.asname is None and a.evaluated_name.split(".")[0] == "torch":
                return "torch"
            if a.asname is not None and a.evaluated_name == "torch":
                return a.asname.name.value
    return None


def _chain_device(site: Site, expr) -> tuple | None:
    """(kind, device expression) of the last move in a method chain (`Net().to(dev).train()`),
    or None when the chain moves nothing."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        attr = expr.func.attr.value
        if attr in ("cuda", "cpu"):
            return attr, None
        if attr == "to":
            dev = kwarg(expr, "device") or (expr.args[0] if expr.args and expr.args[0].keyword is None else None)
            if dev is not None:  # .to(torch.bfloat16) reads as an unknown device: refused, not guessed
                return site.device_kind(dev.value), dev.value
        expr = expr.func.value
    return None


def model_device(site: Site, name: str, line: int) -> tuple:
    """Where module `name` is when line runs: (kind, device expression or None), kind one of
    'cuda', 'cuda-or-cpu', 'cpu', None (a device the codemod cannot reason about), 'unmoved'
    (never moved before line) or 'later' (moved only after line)."""
    events = []  # (line, (kind, expr)): its bindings, then calls that move it in place
    for a in site.assignments(name):
        if site.line(a) < line:
            value = a.value if isinstance(a, (cst.Assign, cst.AnnAssign)) else None
            events.append((site.line(a), 0, (_chain_device(site, value) or ("unmoved", None)) if value is not None
                           else (None, None)))
    moves = [c for c in site.nodes(cst.Call) if isinstance(c.func, cst.Attribute) and c.func.attr.value in _MOVES
             and isinstance(c.func.value, cst.Name) and c.func.value.value == name]
    for c in moves:
        if site.line(c) < line and _chain_device(site, c):  # not .to(memory_format=...)
            events.append((site.line(c), 1, _chain_device(site, c)))
    kind = max(events, key=lambda ev: ev[:2])[2] if events else ("unmoved", None)
    if kind[0] == "unmoved" and any(site.line(c) >= line for c in moves):
        return "later", None
    return kind
