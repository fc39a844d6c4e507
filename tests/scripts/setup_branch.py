"""Setup code on a branch this run never takes (a multi-GPU path), and a debugging call in a
function never called: only what ran is a finding."""
import os

import torch

multi = int(os.environ.get("WORLD_SIZE", "1")) > 1
model = torch.nn.Linear(16, 1)
if multi:
    model = torch.nn.DataParallel(model)
opt = torch.optim.SGD(model.parameters(), lr=0.01)


def debug_hooks():
    torch.autograd.set_detect_anomaly(True)


for step in range(40):
    loss = model(torch.randn(32, 16)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
