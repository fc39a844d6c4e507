"""Linear and Embedding sizes that are not multiples of 8 in a reduced-precision script: GEMMs off the Tensor Cores' fast path.

## What it does
In a script that trains in fp16 or bf16 (`torch.autocast`, `.half()`,
`.bfloat16()`, `dtype=torch.float16` / `torch.bfloat16`), finds `nn.Linear(in, out)`
and `nn.Embedding(num, dim)` layers built with literal sizes that are not
multiples of 8, and names the size and the next multiple of 8.

## Why it is slow
Tensor Cores multiply fp16/bf16 matrices in tiles; cuBLAS runs a GEMM at full
speed when its dimensions are multiples of 8 elements (16 bytes). A layer with
`in_features=1500` or a vocabulary of 50257 makes every GEMM that touches it
either take a slower, unaligned kernel or pad internally, in the forward and both
backward GEMMs, every step. Padding the size up (1500 -> 1504; 50257 -> 50264, or 50304, a multiple of 64)
usually costs a little memory and gains more speed on the layers that dominate.

## Example
```python
model = nn.Sequential(nn.Linear(1500, 4096), nn.GELU(), nn.Linear(4096, 1500)).cuda()
with torch.autocast("cuda", dtype=torch.bfloat16):
    loss = model(x).sum()
```

## Use instead
```python
# pad the feature size where you control it (zero-padded input columns change nothing):
model = nn.Sequential(nn.Linear(1504, 4096), nn.GELU(), nn.Linear(4096, 1504)).cuda()
emb = nn.Embedding(50304, 768)   # vocabulary 50257 padded up; the extra rows are never looked up
```

## When not to fix
When the size is fixed by the data (input features, a pretrained checkpoint's
shapes) and padding the inputs costs a copy every step. When the layer is small:
its GEMM is launch-bound and alignment changes nothing measurable. Narrow output
layers (`out_features` < 64: a classifier over a few classes, a regression head)
are therefore not flagged for their output size: padding a 10-class head to 16
gains nothing measurable and changes the logits' shape. Scripts that train in
fp32 only are not flagged (fp32 GEMMs are not bound by this alignment; TF32 has
its own, smaller, effect). Measure the step time before and after: recent
cuBLAS versions handle many unaligned shapes well.
"""

from __future__ import annotations

import libcst as cst

from trainprof.finding import Finding
from trainprof.rule import Rule, static_detect
from trainprof.source.tree import positional

ID = "matmul-dims"
TITLE = "GEMM sizes not multiples of 8 under fp16/bf16"
# layer -> its size parameters, in positional order
LAYERS = {
    "Linear": ("in_features", "out_features"),
    "LazyLinear": ("out_features",),
    "Embedding": ("num_embeddings", "embedding_dim"),
}
HALF_DTYPES = {"torch.float16", "torch.bfloat16", "torch.half"}
AUTOCASTS = {"torch.autocast", "torch.amp.autocast", "torch.cuda.amp.autocast"}
HEAD_MAX = 64  # a narrower out_features is a head (class count, regression targets): not flagged


def _cpu_autocast(index, c) -> bool:
    dev = c.keywords.get("device_type")
    args = positional(c.node)
    if dev is None and args and not args[0].star:
        dev = index.literal(args[0].value)
    return dev == "cpu"


def reduced_precision(index) -> bool:
    """Whether the script computes in fp16/bf16 on the GPU anywhere."""
    cpu_spans = []
    for c in index.calls:
        if c.qualname in AUTOCASTS or c.qualname == "torch.cpu.amp.autocast":
            if c.qualname == "torch.cpu.amp.autocast" or _cpu_autocast(index, c):
                cpu_spans.append(c.node)
            else:
                return True
        elif c.method in ("half", "bfloat16") and c.receiver and not positional(c.node):
            return True
    cpu_nodes = {id(n) for s in cpu_spans for n in index.walk(s)}
    for n in index.nodes(cst.Attribute):
        if id(n) not in cpu_nodes and index.qualname(n) in HALF_DTYPES:
            return True
    return False


def _sizes(c) -> list[tuple[str, int]]:
    """(parameter, literal int) for each size given as a literal."""
    name = c.qualname.rsplit(".", 1)[-1]
    args = positional(c.node)
    out = []
    for i, p in enumerate(LAYERS[name]):
        arg = args[i] if i < len(args) else next((a for a in c.node.args if a.keyword is not None and a.keyword.value == p), None)
        # a plain int literal (not `-8`, `True` or `*sizes`)
        if arg is not None and not arg.star and isinstance(arg.value, cst.Integer):
            out.append((p, arg.value.evaluated_value))
    return out


def _layer(q: str | None) -> bool:
    return bool(q) and q.startswith("torch.nn.") and q.rsplit(".", 1)[-1] in LAYERS


def lint(index):
    """Static: literal Linear/Embedding sizes off the multiple of 8, in an fp16/bf16 script."""
    layers = [c for c in index.calls if _layer(c.qualname)]
    if not layers or not reduced_precision(index):
        return
    for c in layers:
        bad = [(p, v) for p, v in _sizes(c) if v % 8 and v > 0 and not (p == "out_features" and v < HEAD_MAX)]
        if not bad:
            continue
        name = c.qualname.rsplit(".", 1)[-1]
        what = ", ".join(f"`{p}={v}` (next multiple of 8: {v + 8 - v % 8})" for p, v in bad)
        yield Finding(
            rule=ID, title=TITLE, path=index.path, line=c.line, end_line=c.end_line, severity="low",
            message=f"`nn.{name}` with {what}: fp16/bf16 GEMMs run at full Tensor-Core speed when their "
                    "dimensions are multiples of 8; pad the size up where the data allows.",
        )


RULE = Rule(ID, TITLE, "compute", static_detect(lint), __doc__, needs=("source",), lint=lint)
