"""Matmuls, convolutions and attention run in fp32 on a GPU whose Tensor Cores need bf16/fp16 (or TF32).

## What it does
Finds the GPU time spent in fp32 GEMM, convolution and attention kernels (kernels
that run on the FP32 units -- `sgemm`, `..._ffma_...`, `fmha_..._f32` -- rather than
on Tensor Cores), and the line of the script that launches most of it.
`trainprof lint` suspects it from the source: a model trained on a GPU with no
bf16/fp16/TF32 anywhere (at its forward in the loop); where autocast covers only part of
the step, a model's forward run every step outside it (not under `no_grad`, the model
not cast to fp16/bf16 itself), while the same function runs another under autocast;
or a convnet in reduced precision that never sets `channels_last` (where the model is
built; torchvision's vision transformers are not convnets).

## Why it is slow
On an H100 an fp32 matmul runs at ~50 TFLOP/s on the CUDA cores; the same matmul in
bf16 runs at 600+ TFLOP/s on the Tensor Cores (measured by bench/probe_overhead.py:
4096^3 takes 2.68 ms in fp32, 0.35 ms in TF32, 0.18 ms in bf16). Convolutions gain
less (2-4x, most with channels_last), elementwise kernels about 1.6x (half the bytes).

## Example
```python
out = model(x)                       # fp32 weights and activations
loss = crit(out, y)
```

## Use instead
```python
with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
    out = model(x)
    loss = crit(out, y)
# convnets: also model.to(memory_format=torch.channels_last) and channels_last inputs
# or, keeping fp32 storage: torch.backends.cuda.matmul.allow_tf32 = True
```

## When not to fix
When the step is bound by the CPU (the estimate says so: shrinking GPU time then
gains little), or when the model needs fp32 accuracy in these ops (check the loss
curve). bf16 keeps fp32's range; fp16 needs a GradScaler.
"""

from __future__ import annotations

import re
from functools import lru_cache

import libcst as cst
from libcst import matchers as m

from trainprof.estimate import Change, WhatIf
from trainprof.finding import Evidence, Finding, Fix
from trainprof.fix.codemod import (Codemod, Site, add_import, kwarg, model_device, replace, torch_name)
from trainprof.rule import Rule
from trainprof.source import amp as A
from trainprof.source import frameworks as F
from trainprof.source import patterns as P
from trainprof.source import values as V

ID = "fp32-compute"
# Kernels by what bf16 autocast (and channels_last for convnets) does to them: fp32
# GEMMs on the FP32 units (sgemm, ffma), TF32 GEMMs/convs already on Tensor Cores,
# fp32 attention, cuDNN's NCHW<->NHWC layout transposes (gone with channels_last), and
# memory-bound float kernels (half the bytes in bf16).
_HALF = re.compile(r"bf16|f16|fp16|half|i8|e4m3|e5m2|hmma|bfloat16|__half")
_LAYOUT = re.compile(r"nchwToNhwc|nhwcToNchw", re.I)
_TF32 = re.compile(r"tf32")
_GEMM = re.compile(r"sgemm|gemm.*_ffma|gemm_f32f32|gemmSN_.*float|gemv.*float")
_CONV = re.compile(r"implicit_convolve|winograd|fprop|dgrad|wgrad|conv2d|convolve|xmma_.*conv")
_ATTN = re.compile(r"fmha.*_f32|attention.*<float")
_FLOAT = re.compile(r"<float|float>|_f32|fp32|float,|\(float\)")
_KEEP = re.compile(r"multi_tensor_apply|nll_loss|reduce_kernel|Memcpy|Memset|memcpy|memset")
# bf16 time over this time, per kernel class (bench/probe_overhead.py on an H100: fp32
# matmuls 9-15x faster in bf16 on large shapes, 2-3x on small ones; TF32 -> bf16 ~2x;
# convolutions 2-4x with channels_last; elementwise 2x), plus FLOOR_US per kernel.
RATIO = {"gemm": 0.1, "tf32": 0.5, "attention": 0.25, "conv": 0.33, "layout": 0.0, "elementwise": 0.6}
HEAVY = ("gemm", "attention", "conv", "tf32")
FLOOR_US = 4.0
MIN_GAIN = 0.10  # of the GPU's busy time


@lru_cache(maxsize=4096)  # a trace repeats few kernel names many times
def _kind(name: str) -> str | None:
    n = name.lower()
    if _HALF.search(n) or _KEEP.search(name) or n.startswith("nccl"):
        return None  # (NCCL's kernels move data, and spin while they wait for a peer)
    if _LAYOUT.search(name):
        return "layout"
    if _TF32.search(n):
        return "tf32" if (_GEMM.search(n) or _CONV.search(n) or "gemm" in n) else None
    if _ATTN.search(n):
        return "attention"
    if _CONV.search(n):
        return "conv"
    if _GEMM.search(n):
        return "gemm"
    if _FLOAT.search(n):
        return "elementwise"
    return None


def _loop_line(run, i: int):
    """The training-loop line running when event i started (autocast wraps that line),
    else the innermost script line."""
    if run.lines is not None and run.index is not None and run.script:
        for lp in run.index.loops:
            ln = run.lines.frame_in(i, run.script, range(lp.line, lp.end_line + 1))
            if ln is not None:
                return ln
    return run.script_line(i)


def detect(run):
    tr, n = run.trace, run.n_steps
    dur = tr.dur
    kinds: dict[int, str] = {}
    launch_of: dict[int, int] = {}
    for li, gs in run.launches.by_call.items():
        for g in gs:
            k = _kind(tr.name(g))
            if k:
                kinds[g] = k
                launch_of[g] = li
    heavy = {g for g, k in kinds.items() if k in HEAVY}
    launched = run.launches.launched()
    busy = sum(float(dur[g]) for g in launched) or 1.0
    heavy_us = sum(float(dur[g]) for g in heavy)
    ratio = dict(RATIO, **(run.precision["ratios"] if run.precision else {}))
    factor = {g: min(1.0, ratio[k] + (FLOOR_US / max(float(dur[g]), 1e-3) if k != "layout" else 0.0))
              for g, k in kinds.items()}
    gain = sum(float(dur[g]) * (1 - f) for g, f in factor.items())
    if not heavy or gain < MIN_GAIN * busy or gain / n < 0.05 * run.step_us:
        return  # little to gain on the GPU, or a GPU that mostly idles anyway
    by_kind: dict[str, float] = {}
    for g, k in kinds.items():
        by_kind[k] = by_kind.get(k, 0.0) + float(dur[g])
    # The line that launches most of it, on the training thread (the forward: autocast goes there).
    per_line: dict = {}
    for g in heavy:
        li = launch_of[g]
        if tr.tid[li] == run.steps.tid:
            ln = _loop_line(run, li)
            per_line[ln] = per_line.get(ln, 0.0) + float(dur[g])
    known = {k: v for k, v in per_line.items() if k is not None}
    line = max(known, key=known.get) if known else (run.index.loops[0].line if run.index and run.index.loops else 1)
    scale = tuple(factor.items())
    conv = by_kind.get("conv", 0.0) + by_kind.get("layout", 0.0) > by_kind.get("gemm", 0.0) or any(
        _CONV.search(tr.name(g).lower()) for g in heavy)
    parts = ", ".join(f"{k} {v / n / 1000:.3g} ms" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))
    # channels_last stays advice: it needs every input's producer changed too, not one statement
    fix = ("wrap the forward and the loss in torch.autocast(device_type='cuda', dtype=torch.bfloat16)"
           + ("; by hand: model.to(memory_format=torch.channels_last) and channels_last inputs" if conv else ""))
    fw = F.loop_settings(run.index) if run.index is not None else None
    if fw is not None:  # the framework's loop runs the forward: its precision setting is the fix
        line = fw.call.line
        fix = f"mixed precision: {F.precision_advice(fw)}" + (
            "; by hand: channels_last model and inputs" if conv else "")
    yield Finding(
        rule=ID,
        title="fp32 matmuls/convolutions on Tensor-Core hardware",
        path=run.relpath(),
        line=line,
        severity="medium",
        message=f"{100 * heavy_us / busy:.0f}% of the GPU's busy time is fp32/TF32 "
                f"{'convolution' if conv else 'matmul'} work ({heavy_us / n / 1000:.3g} ms per step)"
                + (f", {by_kind['layout'] / n / 1000:.3g} ms more in NCHW<->NHWC transposes" if by_kind.get("layout") else "")
                + "; bf16 autocast runs it at Tensor-Core rates" + (" and channels_last drops the transposes." if conv else "."),
        evidence=(
            Evidence("fp32 GPU time per step", parts),
            Evidence("share of GPU busy time", 100 * heavy_us / busy, "%"),
            Evidence("fp32 kernels per step", len(kinds) / n),
        ),
        saving=WhatIf(
            Change(gpu_scale=scale),
            basis=_basis(run.precision, ratio),
            confidence="medium",
        ),
        fix=AUTOCAST.fix(fix) if fw is None else Fix(ID, None, fix),
    )


def _basis(precision: dict | None, ratio: dict) -> str:
    if precision is None:
        return ("each fp32 kernel's measured time scaled by its class's bf16/fp32 ratio measured on an H100 "
                "(fp32 matmul 0.1, TF32 0.5, attention 0.25, conv 0.33, layout transposes 0 with channels_last, "
                "elementwise 0.6; +4 us each), replayed")
    timed = ", ".join(f"{label} {ratio[k]:.2g}" for k, label in (("gemm", "fp32 matmul"), ("conv", "conv"),
                                                                ("tf32", "TF32 matmul/conv")) if k in precision["ratios"])
    return (f"each fp32 kernel's measured time scaled by its class's bf16 ratio, timed on {precision['device']} for "
            f"this run's {precision['shapes']} heaviest shapes ({timed}; the rest from the table: attention 0.25, "
            f"layout transposes 0, elementwise 0.6; +4 us each), replayed")


# -- the codemod ------------------------------------------------------------------------
_AUTOCAST = A.AUTOCAST
_BACKWARD = m.Call(func=m.Attribute(attr=m.Name("backward")))
_STOPS = m.Call(func=m.Attribute(attr=m.OneOf(m.Name("backward"), m.Name("zero_grad"), m.Name("step"))))


def _inside(site: Site, node, outer) -> bool:
    return node is outer or any(a is outer for a in site.ancestors(node))


def _loop_device(site: Site, loop, models: set) -> tuple:
    """(kind, device expression) the loop runs on: its `.to(dev)`/`.cuda()`/`device=` calls,
    else where the model was moved before the loop."""
    unknown = False
    for c in m.findall(loop.body, m.Call()):
        f = c.func
        if isinstance(f, cst.Attribute) and f.attr.value == "cuda":
            return "cuda", None
        dev = kwarg(c, "device") or (c.args[0] if isinstance(f, cst.Attribute) and f.attr.value == "to" and c.args
                                     and c.args[0].keyword is None else None)
        if dev is not None:
            kind = site.device_kind(dev.value)
            if kind:
                return kind, dev.value
            unknown = True  # a .to(dtype), or a device the codemod cannot read: keep looking
    for name in sorted(models):
        kind, dev = model_device(site, name, site.line(loop)) if "." not in name else (None, None)
        if kind in ("cuda", "cuda-or-cpu", "cpu"):
            return kind, dev
    return (None if unknown else "none"), None


def _span(site: Site, loop, models: set) -> tuple | str:
    """(block, first, last) statements of the forward and the loss in loop, or a reason why not."""
    if not isinstance(loop.body, cst.IndentedBlock):
        return "the loop's body is on its header line"
    calls_model = lambda node: any(site.code(c.func) in models for c in m.findall(node, m.Call()))
    at = [s for s in m.findall(loop.body, m.SimpleStatementLine()) if site.lines is not None and site.wanted(s)]
    first = at[0] if at else next((k for k in loop.body.body if calls_model(k)), None)
    if first is None:
        return "cannot tell which statement runs the model"
    block = next(a for a in site.ancestors(first) if isinstance(a, cst.IndentedBlock))
    kids = list(block.body)
    i = kids.index(first)
    # from the first statement that calls the model, if it comes before the finding's line
    i = min([i] + [j for j, k in enumerate(kids[:i]) if calls_model(k) and not m.findall(k, _STOPS)])
    stop = next((j for j in range(i, len(kids)) if m.findall(kids[j], _STOPS)), len(kids))
    if stop == i:
        return "the forward and the backward/step are in one statement"
    # up to the statement computing what .backward() is called on (the loss), else up to the backward
    losses = {n.value for b in m.findall(loop.body, _BACKWARD)
              for n in m.findall(b.func.value, m.Name())}
    ends = [j for j in range(i, stop) if any(_inside(site, a, kids[j]) for x in losses for a in site.assignments(x))]
    return block, kids[i], kids[ends[-1] if ends else stop - 1]


def _transform_autocast(site: Site) -> cst.Module:
    loops = site.training_loops()
    # loops that run a backward, when there are: not `for o in optimizers: o.step()`
    loops = [lp for lp in loops if m.findall(lp.body, _BACKWARD)] or loops
    inner = [lp for lp in loops if not any(o is not lp and _inside(site, o, lp) for o in loops)]
    chosen = [lp for lp in inner if site.wanted(lp)]
    if not chosen and site.lines is not None and len(inner) == 1:
        chosen = inner  # a finding line outside the loop (in a forward of this file): the one training loop
    scaler = [c for c in site.nodes(cst.Call) if (site.qualname(c) or "").endswith("GradScaler")]
    models = {site.code(c.func.value) for c in site.nodes(cst.Call) if isinstance(c.func, cst.Attribute)
              and c.func.attr.value in ("parameters", "named_parameters") and not c.args}
    edits, t = {}, torch_name(site)
    # anywhere in the script: `with amp_ctx:` may use an autocast made before the loop
    amp = [c for c in site.nodes(cst.Call) if _AUTOCAST.match(site.qualname(c) or "")]
    for loop in chosen:
        kind, dev = _loop_device(site, loop, models)
        span = _span(site, loop, models)
        why = (f"the script already uses autocast (line {site.line(amp[0])})" if amp else
               "a GradScaler is used (the fp16 path): choose the autocast dtype by hand" if scaler else
               "it runs on the CPU" if kind == "cpu" else
               "nothing is moved to a GPU (the loop runs on the CPU)" if kind == "none" else
               "cannot tell the device the loop runs on" if kind not in ("cuda", "cuda-or-cpu") else
               span if isinstance(span, str) else None)
        if why:
            site.note(loop, False, f"{why}: left alone")
            continue
        block, first, last = span
        tn = t or "torch"
        dt = '"cuda"' if kind == "cuda" else f"{tn}.device({site.code(dev)}).type"
        head = cst.parse_statement(f"with {tn}.autocast(device_type={dt}, dtype={tn}.bfloat16):\n    pass\n")
        kids = list(block.body)
        body = kids[kids.index(first): kids.index(last) + 1]
        edits[first] = head.with_changes(body=cst.IndentedBlock([body[0].with_changes(leading_lines=[]), *body[1:]]),
                                         leading_lines=first.leading_lines)
        edits.update({k: cst.RemoveFromParent() for k in body[1:]})
        a, b = site.line(first), site.pos[last].end.line
        site.note(first, True, f"{f'lines {a}-{b}' if b > a else f'line {a}'} (forward and loss) under "
                               f"autocast(device_type={dt}, dtype=bfloat16)")
    out = replace(site.module, edits)
    return add_import(out, "torch") if edits and t is None else out


AUTOCAST = Codemod(
    "autocast", "unsafe",
    "run the training loop's forward and loss under torch.autocast(dtype=torch.bfloat16)",
    "bf16 changes numerics: compare the loss curve and the final accuracy; some ops stay fp32 under autocast; "
    "outputs read after the block may now be bf16 (cast with .float() where fp32 is needed)",
    _transform_autocast,
)

# -- static detection (`trainprof lint`) ------------------------------------------------
# What says a script already trains in reduced precision (or lets fp32 matmuls use TF32),
# matched against its code's names and strings (not comments or docstrings)
_LOW = re.compile(r"autocast|bfloat16|float16|^half$|allow_tf32|set_float32_matmul_precision|GradScaler|fp16|bf16")
_HEAVY = re.compile(r"^torch\.(nn\.(Linear|Conv[123]d|ConvTranspose[123]d|Transformer\w*|MultiheadAttention|LSTM|GRU|RNN|"
                    r"Bilinear)|nn\.functional\.(linear|conv[123]d|scaled_dot_product_attention)|"
                    r"(matmul|mm|bmm|einsum|addmm|baddbmm))$")


def _says(index, pattern) -> bool:
    """Whether a name, attribute or string of the code (docstrings aside) matches."""
    for n in index.nodes((cst.Name, cst.Attribute, cst.SimpleString)):
        if isinstance(n, cst.SimpleString):
            if not isinstance(index.parent(n), cst.Expr) and pattern.search(str(index.literal(n))):
                return True
        elif pattern.search(n.value if isinstance(n, cst.Name) else n.attr.value):
            return True
    return False


def _convnet(index, heavy) -> bool:
    return any(P.is_conv_layer(c.qualname) for c in heavy) or any(V.torchvision_convnet(index, c.node) for c in index.calls)


def lint(index):
    """Static: a model trained on a GPU with no bf16/fp16/TF32 anywhere, at its forward in the
    training loop; a forward left outside the autocast the loop uses for another; a convnet in
    reduced precision without channels_last, where it is built."""
    fw = F.loop_settings(index)
    if fw is not None:
        yield from _lint_framework(index, fw)
        return
    if not index.loops or not V.gpu_named(index):
        return
    models = V.models(index)
    calls = V.model_calls(index, models)
    heavy = [c for c in index.calls if _HEAVY.match(c.qualname or "")]
    conv = _convnet(index, heavy)
    if not heavy and not calls and not conv:
        return  # no model to speak of (or one this file cannot see)
    if not _says(index, _LOW):
        yield Finding(
            rule=ID, title="fp32 matmuls/convolutions on Tensor-Core hardware", path=index.path,
            line=calls[0].line if calls else index.loops[0].line, severity="low",
            message="the model's matmuls" + ("/convolutions" if conv else "") + " run in fp32: nothing here enables "
                    "bf16 autocast, fp16 or TF32, and on a Tensor-Core GPU fp32 runs them several times slower"
                    + (" (convnets: channels_last too)" if conv else "") + " (static: suspected; `trainprof analyze` "
                    "measures their share of GPU time).",
            fix=AUTOCAST.fix("wrap the forward and the loss in torch.autocast(device_type='cuda', dtype=torch.bfloat16)"),
        )
        return
    for c, amp in A.outside_autocast(index, calls):  # AMP for part of the step: a forward left out
        yield Finding(
            rule=ID, title="fp32 matmuls/convolutions on Tensor-Core hardware", path=index.path, line=c.line,
            severity="low", fix=Fix(ID, None, f"run it under the same autocast as line {amp.line}"),
            message=f"`{c.text[:60]}` runs outside autocast, every step, while the forward at line {amp.line} runs "
                    "under it: this model's matmuls run in fp32, several times slower on a Tensor-Core GPU (static: "
                    "suspected; `trainprof analyze` measures their share of GPU time).")
    if conv and not _says(index, re.compile(r"^channels_last$")):
        first = next((c.line for c in heavy if P.is_conv_layer(c.qualname)), index.loops[0].line)
        line = models[V.dotted(calls[0].node.func)] if calls else first  # where the model is built: .to() goes there
        yield Finding(
            rule=ID, title="Convolutions in NCHW under reduced precision", path=index.path, line=line, severity="low",
            message="the convnet trains in reduced precision but nothing sets channels_last: cuDNN's Tensor-Core "
                    "convolutions want NHWC, so activations are transposed around each one (static: suspected; "
                    "`trainprof analyze` measures the transposes).",
            fix=Fix(ID, None, "model.to(memory_format=torch.channels_last) and inputs "
                              ".contiguous(memory_format=torch.channels_last)"),
        )


_FULL = (32, "32", "32-true", None)  # Lightning's precision values that leave the model in fp32


def _lint_framework(index, fw):
    """A framework's loop on a GPU with its precision left at fp32: at its settings call."""
    if F.from_command_line(fw):  # set (or not) by the command line: nothing to reason about here
        return
    kw = fw.call.keywords
    if fw.framework == "lightning":
        gpu = kw.get("accelerator") in ("gpu", "cuda") or V.gpu_named(index)
        full = kw.get("precision") in _FULL  # a value not a literal (...): silent
        heavy = any(_HEAVY.match(c.qualname or "") for c in index.calls)
    else:  # the HF Trainer runs on the GPU unless told not to; its model is a transformer
        gpu = not (kw.get("use_cpu") is True or kw.get("no_cuda") is True)
        full = not any(kw.get(k) not in (None, False) for k in ("bf16", "fp16", "tf32"))
        heavy = True
    if not (gpu and full and heavy) or _says(index, _LOW):
        return
    yield Finding(
        rule=ID, title="fp32 matmuls/convolutions on Tensor-Core hardware", path=index.path, line=fw.call.line,
        severity="low",
        message="the framework trains the model in fp32 on a GPU: nothing here sets mixed precision or TF32, and on a "
                "Tensor-Core GPU fp32 runs matmuls and convolutions several times slower (static: suspected; "
                "`trainprof analyze` measures their share of GPU time).",
        fix=Fix(ID, None, f"mixed precision: {F.precision_advice(fw)}"),
    )


RULE = Rule(ID, "fp32 matmuls/convolutions on Tensor-Core hardware", "compute", detect, __doc__,
            needs=("trace", "cuda"), codemods=(AUTOCAST,), lint=lint, aliases=('fp32-matmul', 'conv-layout'))
