"""A loader whose worker count is computed (not a literal) and whose prefetch queue
outlasts the profiled steps."""
import os

import torch
from torch.utils.data import DataLoader, TensorDataset

workers = min(2, os.cpu_count() or 1)  # computed: the source alone cannot tell
ds = TensorDataset(torch.randn(4096, 16), torch.randn(4096, 1))
loader = DataLoader(ds, batch_size=32, num_workers=workers, prefetch_factor=16)
model = torch.nn.Linear(16, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for step, (x, y) in enumerate(loader):
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()
