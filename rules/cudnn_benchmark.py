"""Convolution layers without `torch.backends.cudnn.benchmark = True`: cuDNN picks its convolution algorithm by heuristic.

## What it does
Finds scripts that build convolution layers (`nn.Conv1d/2d/3d`,
`nn.ConvTranspose1d/2d/3d`, their `Lazy` forms, or a torchvision convnet: not its vision
transformers, `vit_*`/`swin_*`, whose one convolution is the patch embedding) and
never set `torch.backends.cudnn.benchmark`, and points at the first one built.

## Why it is slow
With `benchmark = False` (the default) cuDNN chooses each convolution's algorithm
from a heuristic. With `benchmark = True` it times the candidate algorithms the
first time it meets a new input shape and keeps the fastest for that shape; for
some layer shapes, batch sizes and GPUs the heuristic's pick is measurably slower.

## Example
```python
model = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU()).cuda()
for x, y in loader:
    ...
```

## Use instead
```python
torch.backends.cudnn.benchmark = True   # once, before the first step
model = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU()).cuda()
```

## When not to fix
The gains are often small: measured on an H100 with a ResNet-50 and fixed input
shapes, turning benchmark on gained nothing measurable (recent cuDNN heuristics
pick well for common shapes). When input shapes change every step
(variable-length inputs, variable image sizes, a ragged last batch on every
epoch), benchmark re-tunes for every new shape and those tuning runs cost more
than they save. When results must be reproducible (`cudnn.deterministic = True`,
`torch.use_deterministic_algorithms(True)`), leave it off: the script is left
alone then, as it is when it sets `benchmark` explicitly to anything. Measure the
step time both ways before keeping it.
"""

from __future__ import annotations

import re

import libcst as cst

from trainprof.finding import Finding
from trainprof.rule import Rule
from trainprof.source import patterns as P
from trainprof.source import values as V
from trainprof.trace import measures as M

ID = "cudnn-benchmark"
TITLE = "cuDNN autotuning off for convolutions"
_CONV_KERNEL = re.compile(r"conv|winograd", re.IGNORECASE)


def _targets(node) -> list:
    if isinstance(node, cst.Assign):
        return [t.target for t in node.targets]
    return [node.target]  # AugAssign, AnnAssign


def _first_positional(call: cst.Call):
    """The first positional argument's value, unless it is `*x` (or there is none)."""
    # a plain positional argument cannot follow a keyword or `**`: if any, it comes first
    a = call.args[0] if call.args else None
    return a.value if a is not None and a.keyword is None and not a.star else None


def _sets_choice(index) -> bool:
    """Whether the script decides cuDNN's autotuning itself (benchmark assigned, or
    passed to cudnn.flags), or asks for deterministic results."""
    for node in index.nodes((cst.Assign, cst.AugAssign, cst.AnnAssign)):
        for t in _targets(node):
            q = index.qualname(t) if isinstance(t, cst.Attribute) else None
            if q == "torch.backends.cudnn.benchmark":
                return True
            if q == "torch.backends.cudnn.deterministic" and isinstance(node, cst.Assign) \
                    and index.literal(node.value) is True:
                return True
    for c in index.calls:
        if c.qualname == "torch.backends.cudnn.flags" and "benchmark" in c.keywords:
            return True
        if c.qualname == "torch.use_deterministic_algorithms" and index.literal(_first_positional(c.node)) is not False:
            return True
    return False


def lint(index):
    """Static: convolution layers (or a torchvision convnet) built, cudnn.benchmark never set."""
    first = next((c for c in index.calls if P.is_conv_layer(c.qualname)), None) or next(
        (c for c in index.calls if V.torchvision_convnet(index, c.node)), None)  # its own layers first
    if first is None or _sets_choice(index):
        return
    name = f"nn.{first.qualname.rsplit('.', 1)[-1]}` layers" if P.is_conv_layer(first.qualname) else \
        "a torchvision convnet`"
    yield Finding(
        rule=ID, title=TITLE, path=index.path, line=first.line, end_line=first.end_line, severity="low",
        message=f"the script builds `{name} and never sets `torch.backends.cudnn.benchmark`: cuDNN "
                "picks convolution algorithms by heuristic instead of timing them. Setting it True once "
                "before training may help with fixed input shapes; the gain is often small (measure it).",
    )


def _conv_kernels(trace) -> int:
    if not trace.has_cuda:
        return 0
    m = M.gpu_mask(trace) & trace.name_mask(lambda n: bool(_CONV_KERNEL.search(n)))
    return int(m.sum())


def detect(run):
    if run.index is None:
        return
    from dataclasses import replace

    # only where convolutions ran on the GPU: with none (a CPU run, a branch not taken), there is
    # nothing for cuDNN to tune in this run, and `lint` still names the layers
    if not _conv_kernels(run.trace):
        return
    for f in lint(run.index):
        yield replace(f, path=run.relpath())


RULE = Rule(ID, TITLE, "compute", detect, __doc__, needs=("source",), lint=lint)
