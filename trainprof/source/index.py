"""Parse a source once, with libcst: every call with its qualified name, the training
loop(s), a line -> calls map, and what the detectors and codemods ask of a node (its lines,
text, parent, qualified name, literal value).

Qualified names see through aliases (`import torch as T; T.cuda.synchronize()` is
`torch.cuda.synchronize`); they come from libcst's QualifiedNameProvider, kept where a
name was imported or is a builtin. Method calls on values (`loss.item()`) have no
qualified name; they are matched by method name. The static detectors (rules' `lint`),
the measured ones (rules' `detect`) and the codemods (fix/codemod.py) all read this one
parse; loops.py holds the one definition of the training loop.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from typing import Iterator

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider, QualifiedNameProvider, QualifiedNameSource

from ..errors import TrainprofError
from ..files import read_regular
from . import depth
from .frameworks import settings, step_hooks
from .loops import Loop, loop_functions, training_loops
from .tree import Nodes, literal


@dataclass(frozen=True, eq=False)
class CallSite:
    line: int
    end_line: int
    col: int
    qualname: str | None  # torch.cuda.synchronize, print, logging.info ...
    method: str | None  # for x.item(): "item"
    receiver: str | None  # source text of x in x.item()
    text: str  # the call's source
    keywords: dict  # keyword -> literal value, or ... when not a literal
    args: tuple[cst.BaseExpression, ...]  # the positional arguments (a starred one as its value)
    node: cst.Call = field(repr=False)


@dataclass(eq=False)
class SourceIndex:
    path: str
    text: str
    module: cst.Module
    tree: Nodes  # every node by type, parents and children: the walks detectors make
    wrapper: MetadataWrapper  # further libcst metadata, resolved on demand (codemods)
    pos: dict  # node -> libcst CodeRange
    qualnames: dict  # node (a dotted name) -> its qualified name, where imported or builtin
    calls: list[CallSite]
    loops: list[Loop]  # training loops: loops whose body steps an optimizer or calls backward
    functions: dict[str, tuple[int, int]]  # function name -> (line, end_line) of its (first) definition
    loop_functions: set[str]  # functions (of this file) called from inside a training loop
    # `Class.method`s a framework calls every step (frameworks.py), also in functions and loop_functions
    hooks: set[str] = field(default_factory=set)
    options: dict = field(default_factory=dict)  # rule id -> its [tool.trainprof.<id>] options (lint)
    framework: object = None  # frameworks.Settings: the framework's settings call, if any (found once)
    by_line: dict[int, list[CallSite]] = field(default_factory=dict)

    def __post_init__(self):
        # Lines as Python counts them (\n, \r\n, \r; not str.splitlines' form feeds and U+2028)
        self._ends = _LINE.findall(self.text)  # with their ends: code() slices by position
        self.lines = [ln.rstrip("\r\n") for ln in self._ends]

    def calls_at(self, line: int) -> list[CallSite]:
        return self.by_line.get(line, [])

    def in_loop(self, line: int) -> bool:
        """Whether a line runs every step: inside a training loop, or inside a
        function of this file called from one."""
        if any(lp.line <= line <= lp.end_line for lp in self.loops):
            return True
        return any(self.functions[f][0] <= line <= self.functions[f][1] for f in self.loop_functions)

    def line_text(self, line: int) -> str:
        ls = self.lines
        return ls[line - 1].strip() if 0 < line <= len(ls) else ""

    def line(self, node: cst.CSTNode) -> int:
        return self.pos[node].start.line

    def end_line(self, node: cst.CSTNode) -> int:
        return self.pos[node].end.line

    def code(self, node: cst.CSTNode) -> str:
        """The node's source text, as written (its own parentheses aside)."""
        r = self.pos[node]
        ls = self._ends
        a, b = r.start.line - 1, r.end.line - 1
        if b >= len(ls):
            return self.module.code_for_node(node)
        if a == b:
            return ls[a][r.start.column:r.end.column]
        return ls[a][r.start.column:] + "".join(ls[a + 1:b]) + ls[b][:r.end.column]

    def qualname(self, node: cst.CSTNode) -> str | None:
        """The dotted name a call or name refers to (`T.zeros` -> torch.zeros), or None."""
        return self.qualnames.get(node.func if isinstance(node, cst.Call) else node)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.tree.parent.get(node)

    def ancestors(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        return self.tree.ancestors(node)

    def walk(self, node: cst.CSTNode) -> Iterator[cst.CSTNode]:
        """node and every node below it, in source order."""
        return self.tree.walk(node)

    def nodes(self, kind) -> list:
        """Every node of this type (or types) in the module, in source order."""
        return self.tree.of(kind)

    @staticmethod
    def literal(node: cst.CSTNode | None):
        """The value of a literal expression (numbers, strings, True/False/None, and
        tuples, lists, sets and dicts of those), else ... (Ellipsis)."""
        return literal(node)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def _dotted(node: cst.CSTNode) -> bool:
    while isinstance(node, cst.Attribute):
        node = node.value
    return isinstance(node, cst.Name)


def _qualnames(wrapper: MetadataWrapper, tree: Nodes) -> dict:
    """Dotted names -> the qualified name they refer to, where it was imported or is a
    builtin (the first in sorted order, where branches bind it differently)."""
    meta = wrapper.resolve(QualifiedNameProvider)
    keep = (QualifiedNameSource.IMPORT, QualifiedNameSource.BUILTIN)
    out = {}
    for node in tree.of((cst.Name, cst.Attribute)):
        if not _dotted(node):
            continue
        qs = meta.get(node)
        if callable(qs):  # libcst resolves lazily in some versions
            qs = qs()
        names = sorted(q.name for q in qs or () if q.source in keep and not q.name.startswith("."))
        if names:
            n = names[0]
            out[node] = n[len("builtins."):] if n.startswith("builtins.") else n
    return out


def _keywords(call: cst.Call) -> dict:
    return {a.keyword.value: literal(a.value) for a in call.args if a.keyword is not None}


class ParseError(TrainprofError):
    def __init__(self, path: str, line: int | None, why: str):
        super().__init__(f"{path}{'' if line is None else f':{line}'}: cannot parse: {why}")
        self.path, self.line, self.why = path, line, why


def parse(path: str, text: str) -> cst.Module:
    deep, line = depth.nesting(text)
    if deep > depth.MAX_NESTING:
        raise ParseError(path, line, f"nested too deeply (about {deep} levels; trainprof reads up to "
                                     f"{depth.MAX_NESTING})")
    if deep > depth.SUSPECT:
        crash = depth.parser_survives(cst.parse_module, text)
        if crash:
            raise ParseError(path, line, f"nested too deeply: the parser crashed on it ({crash})")
    try:
        return cst.parse_module(text)
    except cst.ParserSyntaxError as e:
        line, why = e.raw_line, e.message
    except RecursionError:
        raise ParseError(path, None, "nested too deeply") from None
    # Python's own parser says what is wrong more plainly (only read on this error path)
    try:
        compile(text, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as e:
        line, why = e.lineno, e.msg
    except (ValueError, RecursionError, MemoryError):
        pass
    raise ParseError(path, line, why)


SOURCE_MAX = 16 << 20  # bytes of one source file, at most: no training script is near it


def read_source(path: str) -> str:
    """A source's text: a regular file (a FIFO or /dev/zero is refused, not read), up to SOURCE_MAX."""
    try:
        return read_regular(path, SOURCE_MAX).decode("utf-8")
    except OSError as e:
        raise TrainprofError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TrainprofError(f"{path}: not UTF-8 text") from None


def index_source(path: str, text: str | None = None, module: cst.Module | None = None) -> SourceIndex:
    """The index of `path` (its text read here unless given; a module already parsed from
    that text may be given too)."""
    if text is None:
        text = read_source(path)
    try:
        return _index(path, text, module)
    except (RecursionError, MemoryError):  # a form the depth estimate misjudged: an input error all the same
        raise ParseError(path, None, "nested too deeply") from None


def _index(path: str, text: str, module: cst.Module | None) -> SourceIndex:
    module = module if module is not None else parse(path, text)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    pos = wrapper.resolve(PositionProvider)
    tree = Nodes(module)
    qualnames = _qualnames(wrapper, tree)
    ix = SourceIndex(os.path.abspath(path), text, module, tree, wrapper, pos, qualnames, [], [], {}, set())
    calls = []
    for node in tree.of(cst.Call):
        f = node.func
        r = pos[node]
        calls.append(CallSite(
            r.start.line, r.end.line, r.start.column, qualnames.get(f),
            f.attr.value if isinstance(f, cst.Attribute) else None,
            ix.code(f.value) if isinstance(f, cst.Attribute) else None,
            ix.code(node), _keywords(node), tuple(a.value for a in node.args if a.keyword is None and a.star != "**"),
            node))
    calls.sort(key=lambda c: (c.line, c.col))
    ix.calls = calls
    for node in tree.of((cst.FunctionDef,)):
        ix.functions.setdefault(node.name.value, (ix.line(node), ix.end_line(node)))
    ix.loops = training_loops(ix)
    hooks = step_hooks(ix)
    ix.functions.update(hooks)
    ix.hooks = set(hooks)
    ix.loop_functions = loop_functions(ix)
    ix.framework = settings(ix)
    for c in calls:
        for ln in range(c.line, c.end_line + 1):
            ix.by_line.setdefault(ln, []).append(c)
    return ix
