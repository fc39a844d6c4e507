"""Slow: a deep stack of small layers with a for-loop Adam (foreach=False): the per-parameter optimizer loop dominates."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
depth, width, batch = (48, 256, 32) if device == "cuda" else (24, 64, 8)

model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.ReLU())]).to(device)
opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
x = torch.randn(batch, width, device=device)
target = torch.randn(batch, width, device=device)

for step in range(args.steps):
    loss = nn.functional.mse_loss(model(x), target)
    opt.zero_grad()
    loss.backward()
    opt.step()
