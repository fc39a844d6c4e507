"""Parse the script once: its training loop(s), every call with a qualified name,
and a line -> calls map, for the rules and the codemods.

Qualified names see through aliases (`import torch as T; T.cuda.synchronize()`
is `torch.cuda.synchronize`). Method calls on values (`loss.item()`) have no
qualified name; they are matched by method name.
"""

from __future__ import annotations

import ast
import builtins
import os
from dataclasses import dataclass, field

from ..errors import TrainprofError

STEP_METHODS = {"backward", "step"}


@dataclass(frozen=True)
class CallSite:
    line: int
    end_line: int
    col: int
    qualname: str | None  # torch.cuda.synchronize, print, logging.info ...
    method: str | None  # for x.item(): "item"
    receiver: str | None  # source text of x in x.item()
    text: str  # the call's source
    keywords: dict  # keyword -> literal value, or ... when not a literal
    node: ast.Call = field(compare=False, repr=False)


@dataclass(frozen=True)
class Loop:
    line: int
    end_line: int
    header: str  # "for batch in loader:"
    iter_text: str | None


@dataclass
class SourceIndex:
    path: str
    text: str
    tree: ast.Module
    imports: dict[str, str]  # local name -> qualified name
    calls: list[CallSite]
    loops: list[Loop]  # training loops: loops whose body steps an optimizer or calls backward
    functions: dict[str, tuple[int, int]]  # function name -> (line, end_line) of its definition
    loop_functions: set[str]  # functions (of this file) called from inside a training loop
    by_line: dict[int, list[CallSite]] = field(default_factory=dict)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

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

    def qualname(self, node: ast.AST) -> str | None:
        return _qualname(node, self.imports)


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _qualname(node: ast.AST, imports: dict[str, str]) -> str | None:
    d = _dotted(node)
    if d is None:
        return None
    head, _, rest = d.partition(".")
    if head in imports:
        q = imports[head]
        return f"{q}.{rest}" if rest else q
    if hasattr(builtins, head):
        return d
    return None


def _literal(node: ast.AST):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ...


def _imports(tree: ast.Module) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    out[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _is_step_call(call: ast.Call) -> bool:
    f = call.func
    return isinstance(f, ast.Attribute) and f.attr in STEP_METHODS


def index_source(path: str, text: str | None = None) -> SourceIndex:
    if text is None:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise TrainprofError(f"cannot read {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise TrainprofError(f"{path}: not UTF-8 text") from None
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as e:
        raise TrainprofError(f"{path}:{e.lineno}: cannot parse: {e.msg}") from None
    imports = _imports(tree)
    seg = text.splitlines()

    raw = [ln.encode("utf-8", "surrogatepass") for ln in text.splitlines(keepends=True)]

    def src(node) -> str:
        # ast.get_source_segment re-splits the whole file on every call (a 3 MB script took
        # 33 s); the same slice from lines split once. Offsets are in UTF-8 bytes.
        a, b = node.lineno - 1, (node.end_lineno or node.lineno) - 1
        if node.end_col_offset is None or b >= len(raw):
            return ""
        if a == b:
            part = raw[a][node.col_offset:node.end_col_offset]
        else:
            part = raw[a][node.col_offset:] + b"".join(raw[a + 1:b]) + raw[b][:node.end_col_offset]
        return part.decode("utf-8", "replace")

    calls: list[CallSite] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        method = f.attr if isinstance(f, ast.Attribute) else None
        receiver = src(f.value) if isinstance(f, ast.Attribute) else None
        kw = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
        calls.append(CallSite(node.lineno, node.end_lineno or node.lineno, node.col_offset,
                              _qualname(f, imports), method, receiver, src(node), kw, node))
    calls.sort(key=lambda c: (c.line, c.col))

    functions: dict[str, tuple[int, int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            functions.setdefault(node.name, (node.lineno, node.end_lineno or node.lineno))

    # Training loops: the innermost loops whose bodies call .backward() or .step()
    # (directly, or through a function of this file).
    def steps_in(body_nodes, seen=()) -> bool:
        for n in body_nodes:
            for c in ast.walk(n):
                if isinstance(c, ast.Call):
                    if _is_step_call(c):
                        return True
                    if isinstance(c.func, ast.Name) and c.func.id in fn_nodes and c.func.id not in seen:
                        if steps_in(fn_nodes[c.func.id].body, seen + (c.func.id,)):
                            return True
        return False

    fn_nodes = {n.name: n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    loops: list[Loop] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and steps_in(node.body):
            inner = [n for n in ast.walk(node) if n is not node and isinstance(n, (ast.For, ast.AsyncFor, ast.While))
                     and steps_in(n.body)]
            if inner:
                continue  # an epoch loop around the step loop
            it = src(node.iter) if isinstance(node, (ast.For, ast.AsyncFor)) else None
            loops.append(Loop(node.lineno, node.end_lineno or node.lineno, seg[node.lineno - 1].strip(), it))
    loops.sort(key=lambda lp: lp.line)

    loop_functions: set[str] = set()
    frontier = [c for c in calls if any(lp.line <= c.line <= lp.end_line for lp in loops)]
    while frontier:
        nxt = []
        for c in frontier:
            f = c.node.func
            name = f.id if isinstance(f, ast.Name) else None
            if name in functions and name not in loop_functions:
                loop_functions.add(name)
                lo, hi = functions[name]
                nxt += [d for d in calls if lo <= d.line <= hi]
        frontier = nxt

    by_line: dict[int, list[CallSite]] = {}
    for c in calls:
        for ln in range(c.line, c.end_line + 1):
            by_line.setdefault(ln, []).append(c)
    return SourceIndex(os.path.abspath(path), text, tree, imports, calls, loops, functions, loop_functions, by_line)
