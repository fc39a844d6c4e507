"""Fixed: constants built once on the device; batches pinned and copied with non_blocking."""
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
pin = device == "cuda"
data = [torch.randn(batch, seq, dim).pin_memory() if pin else torch.randn(batch, seq, dim) for _ in range(8)]
pos = torch.arange(seq, device=device).float()
weights = torch.ones(dim, device=device)
scale = torch.full((batch, seq, 1), 0.5, device=device)

for step in range(args.steps):
    x = data[step % len(data)].to(device, non_blocking=True)
    out = model(x + pos[None, :, None] / seq) * weights * scale
    loss = out.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
