"""A wide MLP regressor, written top to bottom with .cuda(); step time measured by hand."""
import time

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
X = torch.randn(500_000, 1024)
Y = X[:, :8] @ torch.randn(8, 16)
loader = DataLoader(TensorDataset(X, Y), batch_size=1024, shuffle=True, num_workers=2)

net = nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 4096), nn.GELU(),
                    nn.Linear(4096, 4096), nn.GELU(), nn.Linear(4096, 16)).cuda()
opt = torch.optim.AdamW(net.parameters(), lr=3e-4, fused=True)  # ok: fused

for epoch in range(10):
    t_last = time.perf_counter()
    for step, (x, y) in enumerate(loader):
        x, y = x.cuda(), y.cuda()  # expect: blocking-h2d
        w = torch.tensor([1.0] * 8 + [0.5] * 8).cuda()  # expect: host-alloc
        pred = net(x)  # expect: fp32-compute
        loss = ((pred - y).pow(2) * w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()  # expect: item-sync
        now = time.perf_counter()
        step_ms = (now - t_last) * 1e3
        t_last = now
        if step % 200 == 0:
            print(f"epoch {epoch} step {step} loss {loss.item():.4f} {step_ms:.1f} ms/step")  # ok
