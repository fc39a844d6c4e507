"""Device probe: why the step left after removing near-all of it runs slower beside the slow work.

    python bench/probe_residual.py > residual.json

On the H100, examples/excessive_logging.py's `loss.backward()` line took 4.2 ms a step (unprofiled,
line log) beside 124 ms of histogram logging, while the fixed script's whole step took 1.5 ms:
estimates built from the lines beside the slow work ran 1.3-2x long. This times the same
training step (the example's model) beside different kinds of per-step extra work, the
backward line and the whole step with perf_counter, to tell which part of the slow work
slows the rest: nothing, pure-Python CPU work, numpy work over a large array (caches),
a sleep (CPU and GPU idle), copying the parameters to the host (syncs + pageable copies).
"""
import json
import time

import numpy as np
import torch
from torch import nn

dev = "cuda" if torch.cuda.is_available() else "cpu"
width = 2048 if dev == "cuda" else 256
EXTRA_S = 0.1


def sync():
    if dev == "cuda":
        torch.cuda.synchronize()


model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)).to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
x = torch.randn(512, width, device=dev)
y = torch.randint(0, 10, (512,), device=dev)
big = np.random.rand(8 * 1024 * 1024)


def python_work():
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < EXTRA_S:
        n += sum(range(1000))


def numpy_work():
    t = time.perf_counter()
    while time.perf_counter() - t < EXTRA_S:
        np.histogram(big, bins=64)


def copies():
    t = time.perf_counter()
    while time.perf_counter() - t < EXTRA_S:
        for p in model.parameters():
            p.detach().cpu().numpy()


EXTRAS = {"none": None, "python": python_work, "numpy": numpy_work, "sleep": lambda: time.sleep(EXTRA_S),
          "copies": copies}


def run(extra, steps=30):
    bwd, fwd, step = [], [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        t1 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        f"{loss}"  # the example prints the loss: a sync
        t3 = time.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t2 - t1)
        step.append(t3 - t0)
        if extra:
            extra()
    med = lambda v: round(float(np.median(v[5:])) * 1000, 4)  # noqa: E731
    return {"forward_ms": med(fwd), "backward_ms": med(bwd), "step_ms": med(step)}


out = {"device": torch.cuda.get_device_name() if dev == "cuda" else "cpu", "torch": torch.__version__, "extra_s": EXTRA_S}
run(None, 20)  # warm-up
for r in range(2):  # two rounds, interleaved
    for name, fn in EXTRAS.items():
        out.setdefault(name, []).append(run(fn))
print(json.dumps(out, indent=1))
