"""Trains slowly and says so on stdout, with its pid: for the Ctrl-C test. The first
FAST steps (argv, default 0) take ~10 ms, the others 0.5 s."""
import os
import sys
import time

import torch

fast = int(sys.argv[1]) if len(sys.argv) > 1 else 0
print(f"pid {os.getpid()}", flush=True)
model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10_000):
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    print(f"step {step}", flush=True)
    time.sleep(0.01 if step < fast else 0.5)
