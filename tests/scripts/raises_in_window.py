"""Raises in the middle of training: with --at 5 and trainprof's --wait 3 --warmup 1
--active 2, inside the profiled (recording) window."""
import sys

import torch

at = int(sys.argv[sys.argv.index("--at") + 1]) if "--at" in sys.argv else 7
model = torch.nn.Linear(8, 8)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(30):
    loss = model(torch.randn(4, 8)).pow(2).mean()
    if step == at:
        raise RuntimeError(f"loss diverged at step {step}")
    loss.backward()
    opt.step()
    opt.zero_grad()
