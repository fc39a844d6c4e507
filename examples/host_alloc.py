"""Slow: builds constant tensors on the host and copies them every step; batches are
copied from pageable memory with blocking copies."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
seq, dim, batch = (256, 512, 64) if device == "cuda" else (32, 64, 8)

model = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)).to(device)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
data = [torch.randn(batch, seq, dim) for _ in range(8)]  # host batches, pageable

for step in range(args.steps):
    x = data[step % len(data)].to(device)
    pos = torch.arange(seq).float().to(device)
    weights = torch.tensor([1.0] * dim).to(device)
    scale = torch.full((batch, seq, 1), 0.5).to(device)
    out = model(x + pos[None, :, None] / seq) * weights * scale
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
