import contextlib

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

model = DDP(torch.nn.Linear(8, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i in range(40):
    last = (i + 1) % 4 == 0
    with contextlib.nullcontext() if last else model.no_sync():  # ok: no_sync() for all but the last micro-batch (the fix)
        model(torch.randn(16, 8)).pow(2).mean().backward()  # ok: under no_sync()
    if last:
        opt.step()
        opt.zero_grad()
