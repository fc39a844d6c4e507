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

import ast
from itertools import pairwise

from trainprof.finding import Finding
from trainprof.source import patterns as P
from trainprof.rule import Rule, static_detect

ID = "conv-bias-before-bn"
TITLE = "convolution bias before BatchNorm"
NORMS = {"BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm",
         "LazyBatchNorm1d", "LazyBatchNorm2d", "LazyBatchNorm3d"}
_BIAS_POS = 7  # Conv*d(in, out, kernel, stride, padding, dilation | output_padding, groups, bias, ...)


def _layer(index, node, names) -> bool:
    if not isinstance(node, ast.Call):
        return False
    q = index.qualname(node.func) or ""
    return q.startswith("torch.nn.") and q.rsplit(".", 1)[-1] in names


def _biased_conv(index, node) -> bool:
    """A convolution built with a bias: bias not given, or given as a literal true value."""
    if not _layer(index, node, P.CONV_LAYERS):
        return False
    q = index.qualname(node.func).rsplit(".", 1)[-1]
    bias = next((k.value for k in node.keywords if k.arg == "bias"), None)
    if bias is None and len(node.args) > _BIAS_POS - (1 if q.startswith("Lazy") else 0):
        bias = node.args[_BIAS_POS - (1 if q.startswith("Lazy") else 0)]
    if bias is None:
        return True
    if any(k.arg is None for k in node.keywords) and not any(k.arg == "bias" for k in node.keywords):
        return False  # **kwargs may carry bias=False
    return isinstance(bias, ast.Constant) and bool(bias.value) is True


def _unwrap(el):
    """An element of a list of layers; ("name", layer) pairs of an OrderedDict too."""
    if isinstance(el, ast.Tuple) and len(el.elts) == 2 and isinstance(el.elts[0], ast.Constant):
        return el.elts[1]
    return el


def _sequences(index):
    """Runs of layers given in order: nn.Sequential's positional args, list and tuple literals."""
    for node in ast.walk(index.tree):
        if isinstance(node, ast.Call) and (index.qualname(node.func) or "").rsplit(".", 1)[-1] == "Sequential":
            yield node.args
        elif isinstance(node, (ast.List, ast.Tuple)):
            yield [_unwrap(e) for e in node.elts]


def _self_attr(node) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
        return node.attr
    return None


def _called_attr(node) -> str | None:
    return _self_attr(node.func) if isinstance(node, ast.Call) else None


def _loads(fn, name: str) -> list[ast.Name]:
    return [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]


def _bodies(fn):
    for n in ast.walk(fn):
        for attr in ("body", "orelse", "finalbody"):
            b = getattr(n, attr, None)
            if isinstance(b, list) and b and isinstance(b[0], ast.stmt):
                yield b


def _in_forward(index, cls: ast.ClassDef):
    """Conv nodes (built in __init__) whose output goes straight into a BatchNorm in forward."""
    convs, norms = {}, set()
    for fn in cls.body:
        if isinstance(fn, ast.FunctionDef) and fn.name == "__init__":
            for st in ast.walk(fn):
                if isinstance(st, ast.Assign) and len(st.targets) == 1 and _self_attr(st.targets[0]):
                    a = _self_attr(st.targets[0])
                    if _biased_conv(index, st.value):
                        convs[a] = st.value
                    elif _layer(index, st.value, NORMS):
                        norms.add(a)
    if not convs or not norms:
        return
    for fn in cls.body:
        if not (isinstance(fn, ast.FunctionDef) and fn.name == "forward"):
            continue
        # self.bn(self.conv(x))
        for c in ast.walk(fn):
            if _called_attr(c) in norms and c.args and _called_attr(c.args[0]) in convs:
                yield convs[_called_attr(c.args[0])]
        # x = self.conv(x); x = self.bn(x)
        for body in _bodies(fn):
            for s1, s2 in pairwise(body):
                if not (isinstance(s1, ast.Assign) and len(s1.targets) == 1 and isinstance(s1.targets[0], ast.Name)
                        and _called_attr(s1.value) in convs):
                    continue
                v = s1.targets[0].id
                uses = [c for c in ast.walk(s2) if _called_attr(c) in norms and c.args
                        and isinstance(c.args[0], ast.Name) and c.args[0].id == v]
                if not uses:
                    continue
                rebinds = isinstance(s2, ast.Assign) and any(isinstance(t, ast.Name) and t.id == v for t in s2.targets)
                # the conv's output used anywhere but the BatchNorm (a residual): its bias is not cancelled there
                bn_args = [u.args[0] for u in uses]
                if any(n not in bn_args for n in ast.walk(s2) if isinstance(n, ast.Name) and n.id == v
                       and isinstance(n.ctx, ast.Load)):
                    continue
                if not rebinds and any(n.lineno > (s2.end_lineno or s2.lineno) for n in _loads(fn, v)):
                    continue
                yield convs[_called_attr(s1.value)]


def lint(index):
    """Static: a biased conv whose output feeds BatchNorm directly."""
    hits: dict[int, ast.Call] = {}
    for seq in _sequences(index):
        for a, b in pairwise(seq):
            if _biased_conv(index, a) and _layer(index, b, NORMS):
                hits.setdefault(a.lineno, a)
    for cls in ast.walk(index.tree):
        if isinstance(cls, ast.ClassDef):
            for conv in _in_forward(index, cls):
                hits.setdefault(conv.lineno, conv)
    for line, conv in sorted(hits.items()):
        name = index.qualname(conv.func).rsplit(".", 1)[-1]
        yield Finding(
            rule=ID, title=TITLE, path=index.path, line=line, end_line=conv.end_lineno, severity="low",
            message=f"`nn.{name}` has a bias (the default) and feeds BatchNorm directly: BatchNorm subtracts the "
                    "per-channel mean, so the bias cancels out; it only costs a bias-add, its gradient and "
                    "memory. Pass `bias=False`.",
        )


RULE = Rule(ID, TITLE, "compute", static_detect(lint), __doc__, needs=("source",), lint=lint)
