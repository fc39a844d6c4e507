"""A training script that never compiles its model: no `torch.compile`, TorchScript or CUDA graphs.

## What it does
Notes, once, where the model is built (the first model the training loop calls;
the loop's header when the file builds none it can see), that the script trains it
eagerly: nothing calls `torch.compile`, `torch.jit.script`/`trace`, or captures
CUDA graphs (`torch.cuda.graph`, `CUDAGraph`, `make_graphed_callables`).

## Why it is slow
In eager mode every operation is a separate kernel launch, dispatched by Python.
When the kernels are small the GPU finishes each one before the CPU has queued
the next: the step is launch-bound, and the GPU idles between kernels.
`torch.compile` fuses elementwise chains into fewer kernels and (with
`mode="reduce-overhead"`) replays the whole step as a CUDA graph, one launch.

## Example
```python
model = Net().cuda()
for x, y in loader:
    loss = loss_fn(model(x), y)
    loss.backward(); opt.step(); opt.zero_grad()
```

## Use instead
```python
model = torch.compile(Net().cuda())   # or mode="reduce-overhead" for small steps
for x, y in loader:
    loss = loss_fn(model(x), y)
    loss.backward(); opt.step(); opt.zero_grad()
```

## When not to fix
When the GPU is already the bottleneck (large matmuls and convolutions, the GPU
busy the whole step): compiling then gains little and costs compile time at
start-up and at every recompile (dynamic shapes). `trainprof analyze` tells which:
`gpu-idle` and `python-loop` findings mean launch-bound, a busy GPU means not.
Also when the model breaks the graph everywhere (data-dependent control flow).
"""

from __future__ import annotations

import libcst as cst

from trainprof.finding import Finding
from trainprof.rule import Rule, static_detect
from trainprof.source import patterns as P
from trainprof.source import values as V

ID = "no-compile"
TITLE = "Model trained without compiling"

_COMPILERS = {
    "torch.compile", "torch.jit.script", "torch.jit.trace", "torch.jit.trace_module", "torch._dynamo.optimize",
    "torch.cuda.graph", "torch.cuda.graphs", "torch.cuda.CUDAGraph", "torch.cuda.make_graphed_callables",
    "torch.cuda.graphs.graph", "torch.cuda.graphs.CUDAGraph", "torch.cuda.graphs.make_graphed_callables",
}
_NOT_MODULES = {"Parameter", "Module", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"}
_MODEL_FACTORIES = ("torchvision.models.", "timm.create_model", "timm.models.")


def _compiles(index) -> bool:
    # only names read as expressions have a qualified name (not imported or attribute names)
    for node in index.nodes((cst.Attribute, cst.Name)):
        q = index.qualname(node)
        if q in _COMPILERS or (q or "").startswith("torch.cuda.graphs."):
            return True
    # nn.Module.compile() (torch >= 2.2), on a value
    return any(c.method == "compile" and c.qualname is None and c.receiver for c in index.calls)


def _builds_module(index) -> bool:
    own = P.module_classes(index)
    for c in index.calls:
        q = c.qualname or ""
        leaf = q.rsplit(".", 1)[-1]
        if q.startswith("torch.nn.") and not q.startswith(("torch.nn.functional.", "torch.nn.utils.", "torch.nn.init.")) \
                and leaf[:1].isupper() and leaf not in _NOT_MODULES:
            return True
        if q.startswith(_MODEL_FACTORIES) or c.method == "from_pretrained":
            return True
        if isinstance(c.node.func, cst.Name) and c.node.func.value in own:
            return True
    return False


def lint(index):
    """Static: a training loop and a model, and nothing that compiles; at the line that builds
    the model the loop calls first (torch.compile wraps it there)."""
    models = V.models(index)
    if not index.loops or not (_builds_module(index) or models) or _compiles(index):
        return
    calls = V.model_calls(index, models)
    yield Finding(
        rule=ID, title=TITLE, path=index.path, line=models[V.dotted(calls[0].node.func)] if calls else index.loops[0].line,
        severity="info",
        message="nothing in this script calls `torch.compile` (or TorchScript / CUDA graphs). Compiling helps "
                "launch-bound steps (many small kernels, the GPU waiting on Python) and gains nothing where the "
                "GPU is the bottleneck; `trainprof analyze` tells which: `gpu-idle` / `python-loop` findings "
                "mean launch-bound (static: a suggestion, not measured).",
    )


RULE = Rule(ID, TITLE, "compute", static_detect(lint), __doc__, needs=("source",), lint=lint)
