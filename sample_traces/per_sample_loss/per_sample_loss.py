"""Slow: computes the loss in a Python loop, one sample at a time (thousands of tiny kernels per step)."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
dim, batch = (1024, 256) if device == "cuda" else (128, 32)

model = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 100)).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
crit = nn.CrossEntropyLoss()
x = torch.randn(batch, dim, device=device)
y = torch.randint(0, 100, (batch,), device=device)

for step in range(args.steps):
    out = model(x)
    loss = 0
    for i in range(x.shape[0]):
        loss = loss + crit(out[i:i + 1], y[i:i + 1])
    loss = loss / x.shape[0]
    opt.zero_grad()
    loss.backward()
    opt.step()
