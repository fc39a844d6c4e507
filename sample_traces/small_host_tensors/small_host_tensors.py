"""Slow: builds tiny constant tensors on the host and copies them to the device every step."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
dim, batch, chunks = (256, 32, 16) if device == "cuda" else (64, 8, 8)

model = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, 4)).to(device)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(chunks, batch, dim, device=device)
y = torch.randn(chunks, batch, 4, device=device)

for step in range(args.steps):
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4]).to(device)
    bias = torch.ones(4).to(device)
    temp = torch.tensor(0.5).to(device)
    loss = 0
    for xc, yc in zip(x, y):
        out = model(xc) * temp + bias
        loss = loss + ((out - yc).pow(2) * weights).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
