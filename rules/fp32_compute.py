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
# Kernels on the FP32 units: cuBLAS/CUTLASS SIMT GEMMs and xmma GEMMs with ffma,
# cuDNN fp32 convolutions, fp32 memory-efficient attention.
_TC_FREE = re.compile(r"tf32|bf16|f16|fp16|half|i8|e4m3|e5m2|hmma|bfloat16|__half")
_GEMM = re.compile(r"sgemm|gemm.*_ffma|gemm_f32f32|gemmSN_.*float|gemv.*float")
_CONV = re.compile(r"implicit_convolve|winograd|fprop|dgrad|wgrad|conv2d|convolve|xmma_.*conv")
_ATTN = re.compile(r"fmha.*_f32|attention.*<float")
_FLOAT = re.compile(r"<float|float>|_f32|fp32")
_KEEP = re.compile(r"multi_tensor_apply|nll_loss|memcpy|memset|reduce_kernel|Memcpy|Memset")
# bf16 over fp32 time per kernel class, with a floor per kernel (launch-size kernels
# gain nothing): matmuls ~1/10 (probe: 9-15x on large shapes, 2-3x on small ones),
# attention ~1/4, convolutions ~1/3 with channels_last, memory-bound kernels ~0.6.
RATIO = {"gemm": 0.1, "attention": 0.25, "conv": 0.33, "elementwise": 0.6}
FLOOR_US = 4.0
MIN_SHARE = 0.15  # of the GPU's busy time in fp32 GEMM/conv/attention


def _kind(name: str) -> str | None:
    n = name.lower()
    if _TC_FREE.search(n) or _KEEP.search(name):
        return None
    if _ATTN.search(n):
        return "attention"
    if _CONV.search(n):
        return "conv"
    if _GEMM.search(n):
        return "gemm"
    if _FLOAT.search(n):
        return "elementwise"
    return None


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
    heavy = {g for g, k in kinds.items() if k != "elementwise"}
    busy = sum(tl.g_dur.values()) or 1.0
    heavy_us = sum(tl.g_dur[g] for g in heavy)
    if heavy_us < MIN_SHARE * busy or heavy_us / n < 0.05 * ctx.step_us:
        return  # little fp32 work, or a GPU that mostly idles anyway
    by_kind: dict[str, float] = {}
    for g, k in kinds.items():
        by_kind[k] = by_kind.get(k, 0.0) + tl.g_dur[g]
    # The line that launches most of it, on the training thread (the forward: autocast goes there).
    per_line: dict = {}
    for g in heavy:
        li = launch_of[g]
        if tr.tid[li] == ctx.steps.tid:
            ln = ctx.script_line(li)
            per_line[ln] = per_line.get(ln, 0.0) + tl.g_dur[g]
    known = {k: v for k, v in per_line.items() if k is not None}
    line = max(known, key=known.get) if known else (ctx.index.loops[0].line if ctx.index and ctx.index.loops else 1)
    scale = tuple((g, min(1.0, RATIO[k] + FLOOR_US / max(tl.g_dur[g], 1e-3))) for g, k in kinds.items())
    conv = by_kind.get("conv", 0.0) > by_kind.get("gemm", 0.0)
    parts = ", ".join(f"{k} {v / n / 1000:.3g} ms" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))
    fix = ("wrap the forward and the loss in torch.autocast(device_type='cuda', dtype=torch.bfloat16)"
           + ("; with model.to(memory_format=torch.channels_last) and channels_last inputs" if conv else ""))
    yield Finding(
        rule=ID,
        title="fp32 matmuls/convolutions on Tensor-Core hardware",
        path=ctx.relpath(),
        line=line,
        severity="medium",
        message=f"{100 * heavy_us / busy:.0f}% of the GPU's busy time is fp32 "
                f"{'convolution' if conv else 'matmul'} work on the FP32 units ({heavy_us / n / 1000:.3g} ms per step); "
                f"bf16 autocast runs it on the Tensor Cores.",
        evidence=(
            Evidence("fp32 GPU time per step", parts),
            Evidence("share of GPU busy time", 100 * heavy_us / busy, "%"),
            Evidence("fp32 kernels per step", len(kinds) / n),
        ),
        change=WhatIf(
            Change(gpu_scale=scale),
            basis="each fp32 kernel's measured time scaled by its class's bf16/fp32 ratio measured on an H100 "
                  "(matmul 0.1, attention 0.25, conv 0.33 with channels_last, elementwise 0.6; +4 us each), replayed",
            confidence="medium",
        ),
        fix=Fix(ID, None, fix),
    )


RULE = Rule(ID, "fp32 matmuls/convolutions on Tensor-Core hardware", "compute", detect, __doc__,
            needs=("trace", "cuda"))
