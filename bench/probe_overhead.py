"""Device probe: what the profiler costs per recorded event, and what bf16 buys per kernel class.

    python bench/probe_overhead.py > probe.json

1. Profiler overhead: loops of (a) tiny torch ops, (b) plain Python calls, (c) Python
   calls that each run one op, timed unprofiled and under the profiler with the
   settings `trainprof analyze` uses (stacks, shapes); overhead per event = the
   extra time over the events of each kind the trace holds.
2. bf16 vs fp32 (TF32 off) vs TF32: matmuls and convolutions of a few sizes, and an
   elementwise op, timed with CUDA events.
"""
import json
import os
import tempfile
import time

import torch
from torch.profiler import ProfilerActivity, profile

dev = "cuda" if torch.cuda.is_available() else "cpu"
out = {"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "torch": torch.__version__}


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


def f_noop(x):
    return x


def f_op(x):
    return x.add(1.0)


x = torch.zeros(16, device=dev)
LOOPS = {
    "op": lambda n: [x.add(1.0) for _ in range(n)],
    "pycall": lambda n: [f_noop(x) for _ in range(n)],
    "pycall_op": lambda n: [f_op(x) for _ in range(n)],
}


def timed(fn, n):
    fn(n)
    sync()
    t = time.perf_counter()
    fn(n)
    sync()
    return (time.perf_counter() - t) / n * 1e6


def count_events(path):
    with open(path) as f:
        ev = json.load(f)["traceEvents"]
    cats = {}
    for e in ev:
        if e.get("ph") == "X":
            cats[e.get("cat")] = cats.get(e.get("cat"), 0) + 1
    return cats


acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev == "cuda" else [])
N = 20000
res = {}
for name, fn in LOOPS.items():
    base = min(timed(fn, N) for _ in range(3))
    with profile(activities=acts, record_shapes=True, with_stack=True) as p:
        t = time.perf_counter()
        fn(N)
        sync()
        prof_us = (time.perf_counter() - t) / N * 1e6
    path = os.path.join(tempfile.mkdtemp(), "t.json")
    p.export_chrome_trace(path)
    cats = count_events(path)
    res[name] = {"unprofiled_us": base, "profiled_us": prof_us, "events": {k: v / N for k, v in cats.items()}}
out["overhead"] = res


def training_step_probe(depth=8, width=64, steps=60):
    """A realistic step -- nn.Module forward, backward, Adam -- timed unprofiled and under
    trainprof's profiler settings; the per-event cost that explains the difference is what
    the replay's OP_US should be (events weighted like the replay: Python frames 0.22)."""
    model = torch.nn.Sequential(*[m for _ in range(depth) for m in (torch.nn.Linear(width, width), torch.nn.ReLU())]).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(32, width, device=dev)

    def step(n):
        for _ in range(n):
            model(x).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()

    base = min(timed(step, steps) for _ in range(3))
    with profile(activities=acts, record_shapes=True, with_stack=True) as p:
        t = time.perf_counter()
        step(steps)
        sync()
        prof_us = (time.perf_counter() - t) / steps * 1e6
    path = os.path.join(tempfile.mkdtemp(), "t.json")
    p.export_chrome_trace(path)
    cats = {k: v / steps for k, v in count_events(path).items()}
    units = cats.get("cpu_op", 0) + cats.get("cuda_runtime", 0) + 0.22 * cats.get("python_function", 0)
    return {"unprofiled_us": base, "profiled_us": prof_us, "events": cats,
            "us_per_unit": (prof_us - base) / units if units else None}


out["training_step"] = training_step_probe()

if dev == "cuda":
    def gpu_time(fn, reps=20):
        fn()
        torch.cuda.synchronize()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        return a.elapsed_time(b) / reps * 1000  # us

    mm = []
    for m, k, n in [(512, 2048, 2048), (4096, 4096, 4096), (8192, 1024, 1024), (256, 1024, 4096), (32768, 512, 512)]:
        row = {"shape": [m, k, n]}
        for dt in ("fp32", "tf32", "bf16"):
            torch.backends.cuda.matmul.allow_tf32 = dt == "tf32"
            d = torch.bfloat16 if dt == "bf16" else torch.float32
            A, B = torch.randn(m, k, device=dev, dtype=d), torch.randn(k, n, device=dev, dtype=d)
            row[dt] = gpu_time(lambda: A @ B)
        mm.append(row)
    torch.backends.cuda.matmul.allow_tf32 = False
    out["matmul_us"] = mm
    cv = []
    for c, hw, bs in [(64, 56, 64), (256, 14, 64), (128, 28, 32)]:
        row = {"shape": [bs, c, hw]}
        for dt in ("fp32", "tf32", "bf16", "bf16_cl", "fp32_cl"):
            torch.backends.cudnn.allow_tf32 = dt == "tf32"
            d = torch.bfloat16 if dt.startswith("bf16") else torch.float32
            conv = torch.nn.Conv2d(c, c, 3, padding=1).to(dev, d)
            inp = torch.randn(bs, c, hw, hw, device=dev, dtype=d)
            if dt.endswith("_cl"):
                conv = conv.to(memory_format=torch.channels_last)
                inp = inp.to(memory_format=torch.channels_last)
            row[dt] = gpu_time(lambda: conv(inp))
        cv.append(row)
    torch.backends.cudnn.allow_tf32 = True
    out["conv_us"] = cv
    ew = {}
    for dt in ("fp32", "bf16"):
        d = torch.bfloat16 if dt == "bf16" else torch.float32
        t = torch.randn(64 * 1024 * 1024, device=dev, dtype=d)
        ew[dt] = gpu_time(lambda: t.mul(1.5))
    out["elementwise_us"] = ew
print(json.dumps(out, indent=1))
