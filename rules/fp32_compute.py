"""Matmuls, convolutions and attention run in fp32 on a GPU whose Tensor Cores need bf16/fp16 (or TF32).

## What it does
Finds the GPU time spent in fp32 GEMM, convolution and attention kernels (kernels
that run on the FP32 units -- `sgemm`, `..._ffma_...`, `fmha_..._f32` -- rather than
on Tensor Cores), and the line of the script that launches most of it.

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

from trainprof.estimate import WhatIf
from trainprof.estimate.replay import Change
from trainprof.finding import Evidence, Finding, Fix
from trainprof.rule import Rule

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
_FLOAT = re.compile(r"<float|float>|_f32|fp32|float,")
_KEEP = re.compile(r"multi_tensor_apply|nll_loss|reduce_kernel|Memcpy|Memset|memcpy|memset")
# bf16 time over this time, per kernel class (bench/probe_overhead.py on an H100: fp32
# matmuls 9-15x faster in bf16 on large shapes, 2-3x on small ones; TF32 -> bf16 ~2x;
# convolutions 2-4x with channels_last; elementwise 2x), plus FLOOR_US per kernel.
RATIO = {"gemm": 0.1, "tf32": 0.5, "attention": 0.25, "conv": 0.33, "layout": 0.0, "elementwise": 0.6}
HEAVY = ("gemm", "attention", "conv", "tf32")
FLOOR_US = 4.0
MIN_GAIN = 0.10  # of the GPU's busy time


def _kind(name: str) -> str | None:
    n = name.lower()
    if _HALF.search(n) or _KEEP.search(name):
        return None
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


def _loop_line(ctx, i: int):
    """The training-loop line running when event i started (autocast wraps that line),
    else the innermost script line."""
    if ctx.lines is not None and ctx.index is not None and ctx.script:
        sid = int(ctx.stack_ids[i])
        for lp in ctx.index.loops:
            ln = ctx.lines.frame_in(sid, ctx.script, range(lp.line, lp.end_line + 1))
            if ln is not None:
                return ln
    return ctx.script_line(i)


def detect(ctx):
    tr, tl, n = ctx.trace, ctx.timeline, ctx.n_steps
    kinds: dict[int, str] = {}
    launch_of: dict[int, int] = {}
    for li, gs in tl.launch_gpu.items():
        for g in gs:
            k = _kind(tr.name(g))
            if k:
                kinds[g] = k
                launch_of[g] = li
    heavy = {g for g, k in kinds.items() if k in HEAVY}
    launched = [g for gs in tl.launch_gpu.values() for g in gs]
    busy = sum(tl.g_dur[g] for g in launched) or 1.0
    heavy_us = sum(tl.g_dur[g] for g in heavy)
    factor = {g: min(1.0, RATIO[k] + (FLOOR_US / max(tl.g_dur[g], 1e-3) if k != "layout" else 0.0))
              for g, k in kinds.items()}
    gain = sum(tl.g_dur[g] * (1 - f) for g, f in factor.items())
    if not heavy or gain < MIN_GAIN * busy or gain / n < 0.05 * ctx.step_us:
        return  # little to gain on the GPU, or a GPU that mostly idles anyway
    by_kind: dict[str, float] = {}
    for g, k in kinds.items():
        by_kind[k] = by_kind.get(k, 0.0) + tl.g_dur[g]
    # The line that launches most of it, on the training thread (the forward: autocast goes there).
    per_line: dict = {}
    for g in heavy:
        li = launch_of[g]
        if tr.tid[li] == ctx.steps.tid:
            ln = _loop_line(ctx, li)
            per_line[ln] = per_line.get(ln, 0.0) + tl.g_dur[g]
    known = {k: v for k, v in per_line.items() if k is not None}
    line = max(known, key=known.get) if known else (ctx.index.loops[0].line if ctx.index and ctx.index.loops else 1)
    scale = tuple(factor.items())
    conv = by_kind.get("conv", 0.0) + by_kind.get("layout", 0.0) > by_kind.get("gemm", 0.0) or any(
        _CONV.search(tr.name(g).lower()) for g in heavy)
    parts = ", ".join(f"{k} {v / n / 1000:.3g} ms" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))
    fix = ("wrap the forward and the loss in torch.autocast(device_type='cuda', dtype=torch.bfloat16)"
           + ("; with model.to(memory_format=torch.channels_last) and channels_last inputs" if conv else ""))
    yield Finding(
        rule=ID,
        title="fp32 matmuls/convolutions on Tensor-Core hardware",
        path=ctx.relpath(),
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
        change=WhatIf(
            Change(gpu_scale=scale),
            basis="each fp32 kernel's measured time scaled by its class's bf16/fp32 ratio measured on an H100 "
                  "(fp32 matmul 0.1, TF32 0.5, attention 0.25, conv 0.33, layout transposes 0 with channels_last, "
                  "elementwise 0.6; +4 us each), replayed",
            confidence="medium",
        ),
        fix=Fix(ID, None, fix),
    )


RULE = Rule(ID, "fp32 matmuls/convolutions on Tensor-Core hardware", "compute", detect, __doc__,
            needs=("trace", "cuda"))
