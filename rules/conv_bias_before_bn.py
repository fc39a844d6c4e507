"""A convolution with a bias directly followed by BatchNorm: the bias is computed, stored and trained for nothing.

## What it does
Finds convolution layers built with a bias (`bias=True` is the default) whose
output goes straight into a BatchNorm layer: consecutive layers of an
`nn.Sequential(...)` (or of a list of layers), or, in a module's `forward`,
`self.bn(self.conv(x))` and `x = self.conv(x)` followed by `x = self.bn(x)`,
where `self.conv` and `self.bn` are built in `__init__`. It points at the
convolution's construction.

## Why it is slow
BatchNorm subtracts each channel's mean over the batch, so a per-channel constant
added just before it cancels out exactly: the convolution's bias changes nothing
the network computes. It still costs a bias-add over the whole output tensor in
the forward pass, a reduction for its gradient in the backward pass, optimizer
state and memory for the parameter, and it can keep cuDNN from its fused paths.
The cost per layer is small; a deep CNN has many such layers.

## Example
```python
block = nn.Sequential(
    nn.Conv2d(64, 128, 3, padding=1),   # bias=True by default
    nn.BatchNorm2d(128),
    nn.ReLU(inplace=True),
)
```

## Use instead
```python
block = nn.Sequential(
    nn.Conv2d(64, 128, 3, padding=1, bias=False),   # BatchNorm's own shift replaces it
    nn.BatchNorm2d(128),
    nn.ReLU(inplace=True),
)
```

## When not to fix
When loading pretrained weights that include the conv's bias (a checkpoint with
`conv.bias` fails to load strictly once the parameter is gone, and dropping the
bias changes the model's output slightly when BatchNorm runs in eval mode with
running statistics). When BatchNorm is later fused into the conv for inference,
the fused conv gets a bias either way. The saving is usually a few percent of a
convolution's time at most: measure before churning a model definition for it.
A convolution followed by an activation and then BatchNorm is not flagged: there
the bias matters.
"""

from __future__ import annotations

from itertools import pairwise

import libcst as cst
from libcst.metadata import ExpressionContext, ExpressionContextProvider

from trainprof.finding import Finding
from trainprof.rule import Rule, static_detect
from trainprof.source.tree import constant, positional
from trainprof.source import patterns as P

ID = "conv-bias-before-bn"
TITLE = "convolution bias before BatchNorm"
NORMS = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm",
         "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d"}
_BIAS_POS = 7  # Conv*d(in, out, kernel, stride, padding, dilation | output_padding, groups, bias, ...)
# names libcst's ExpressionContextProvider marks LOAD that are not variables read
_PATTERN_NAMES = (cst.MatchAs, cst.MatchStar, cst.MatchMapping, cst.MatchKeywordElement)
_NAME_LISTS = (cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal)


def _true_constant(index, node) -> bool:
    return constant(node) and (isinstance(node, cst.Ellipsis) or bool(index.literal(node)))


def _positional(call: cst.Call) -> list:
    """The positional arguments' values, a `*x` one as its cst.Arg (never a layer)."""
    return [a if a.star else a.value for a in positional(call)]


def _keyword(call: cst.Call, name: str):
    return next((a.value for a in call.args if a.keyword is not None and a.keyword.value == name), None)


def _layer(index, node, names) -> bool:
    if not isinstance(node, cst.Call):
        return False
    q = index.qualname(node) or ""
    return q.startswith("torch.nn.") and q.rsplit(".", 1)[-1] in names


def _biased_conv(index, node) -> bool:
    """A convolution built with a bias: bias not given, or given as a literal true value."""
    if not _layer(index, node, P.CONV_LAYERS):
        return False
    pos = _BIAS_POS - (1 if index.qualname(node).rsplit(".", 1)[-1].startswith("Lazy") else 0)
    args = _positional(node)
    bias = _keyword(node, "bias")
    if bias is None and len(args) > pos:
        bias = args[pos]
    if bias is None:
        return True
    if any(a.star == "**" for a in node.args) and _keyword(node, "bias") is None:
        return False  # **kwargs may carry bias=False
    return _true_constant(index, bias)


def _item(el):
    """A list or tuple element's value; a `*x` one stays the cst.StarredElement (never a layer)."""
    return el.value if isinstance(el, cst.Element) else el


def _unwrap(index, el):
    """An element of a list of layers; ("name", layer) pairs of an OrderedDict too."""
    if isinstance(el, cst.Tuple) and len(el.elements) == 2 and isinstance(el.elements[0], cst.Element) \
            and constant(el.elements[0].value):
        return _item(el.elements[1])
    return el


def _subscript_items(node: cst.Subscript) -> list:
    """`x[a, b]`'s items (a tuple); a `*a` or a slice stays its node (never a layer)."""
    return [e.slice.value if isinstance(e.slice, cst.Index) and not e.slice.star else e.slice for e in node.slice]


def _sequences(index):
    """Runs of layers given in order: nn.Sequential's positional args, list and tuple literals."""
    for node in index.nodes((cst.Call, cst.List, cst.Tuple, cst.Subscript)):
        if isinstance(node, cst.Call):
            if (index.qualname(node) or "").rsplit(".", 1)[-1] == "Sequential":
                yield _positional(node)
        elif isinstance(node, cst.Subscript):
            if len(node.slice) > 1:
                yield [_unwrap(index, e) for e in _subscript_items(node)]
        else:
            yield [_unwrap(index, _item(e)) for e in node.elements]


def _self_attr(node) -> str | None:
    if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
        return node.attr.value
    return None


def _called_attr(node) -> str | None:
    return _self_attr(node.func) if isinstance(node, cst.Call) else None


def _methods(cls: cst.ClassDef, name: str) -> list[cst.FunctionDef]:
    """The class's `def name` (not `async def`), in order."""
    return [fn for fn in cls.body.body
            if isinstance(fn, cst.FunctionDef) and fn.asynchronous is None and fn.name.value == name]


def _assignments(index, fn) -> list[cst.Assign]:
    """fn's assignments in source order (the last one to bind an attribute wins, as it runs last)."""
    return [n for n in index.walk(fn) if isinstance(n, cst.Assign)]


def _loads(index, node, name: str) -> list[cst.Name]:
    """The Names under node that read the variable `name` (loads, not bindings)."""
    ctx = index.wrapper.resolve(ExpressionContextProvider)
    out = []
    for n in index.walk(node):
        if not (isinstance(n, cst.Name) and n.value == name and ctx.get(n) == ExpressionContext.LOAD):
            continue
        p = index.parent(n)
        if isinstance(p, _PATTERN_NAMES) or (isinstance(p, cst.Arg) and p.keyword is n):
            continue  # a match capture, a keyword argument's name
        if not any(isinstance(a, _NAME_LISTS) for a in index.ancestors(n)):
            out.append(n)
    return out


def _bodies(index, fn):
    """fn's statement lists (bodies, else and finally blocks: `a; b` on one line is two statements)."""
    for block in index.walk(fn):
        if isinstance(block, (cst.IndentedBlock, cst.SimpleStatementSuite)):
            yield [s for st in block.body for s in (st.body if isinstance(st, cst.SimpleStatementLine) else [st])]


def _in_forward(index, cls: cst.ClassDef):
    """Conv nodes (built in __init__) whose output goes straight into a BatchNorm in forward."""
    convs, norms = {}, set()
    for fn in _methods(cls, "__init__"):
        for st in _assignments(index, fn):
            a = _self_attr(st.targets[0].target) if len(st.targets) == 1 else None
            if a:
                if _biased_conv(index, st.value):
                    convs[a] = st.value
                elif _layer(index, st.value, NORMS):
                    norms.add(a)
    if not convs or not norms:
        return
    for fn in _methods(cls, "forward"):
        # self.bn(self.conv(x))
        for c in index.walk(fn):
            if _called_attr(c) in norms and (args := _positional(c)) and _called_attr(args[0]) in convs:
                yield convs[_called_attr(args[0])]
        # x = self.conv(x); x = self.bn(x)
        for body in _bodies(index, fn):
            for s1, s2 in pairwise(body):
                if not (isinstance(s1, cst.Assign) and len(s1.targets) == 1
                        and isinstance(s1.targets[0].target, cst.Name) and _called_attr(s1.value) in convs):
                    continue
                v = s1.targets[0].target.value
                bn_args = [args[0] for c in index.walk(s2) if _called_attr(c) in norms and (args := _positional(c))
                           and isinstance(args[0], cst.Name) and args[0].value == v]
                if not bn_args:
                    continue
                rebinds = isinstance(s2, cst.Assign) and any(
                    isinstance(t.target, cst.Name) and t.target.value == v for t in s2.targets)
                # the conv's output used anywhere but the BatchNorm (a residual): its bias is not cancelled there
                if any(all(n is not b for b in bn_args) for n in _loads(index, s2, v)):
                    continue
                if not rebinds and any(index.line(n) > index.end_line(s2) for n in _loads(index, fn, v)):
                    continue
                yield convs[_called_attr(s1.value)]


def lint(index):
    """Static: a biased conv whose output feeds BatchNorm directly."""
    hits: dict[int, cst.Call] = {}
    for seq in _sequences(index):
        for a, b in pairwise(seq):
            if _biased_conv(index, a) and _layer(index, b, NORMS):
                hits.setdefault(index.line(a), a)
    for cls in index.nodes(cst.ClassDef):
        for conv in _in_forward(index, cls):
            hits.setdefault(index.line(conv), conv)
    for line, conv in sorted(hits.items()):
        name = index.qualname(conv).rsplit(".", 1)[-1]
        yield Finding(
            rule=ID, title=TITLE, path=index.path, line=line, end_line=index.end_line(conv), severity="low",
            message=f"`nn.{name}` has a bias (the default) and feeds BatchNorm directly: BatchNorm subtracts the "
                    "per-channel mean, so the bias cancels out; it only costs a bias-add, its gradient and "
                    "memory. Pass `bias=False`.",
        )


RULE = Rule(ID, TITLE, "compute", static_detect(lint), __doc__, needs=("source",), lint=lint)
