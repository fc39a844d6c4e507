"""Fixed, as trainprof advises: saves the checkpoint every 500 steps."""
import argparse
import os
import tempfile

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
width, batch = (2048, 1024) if device == "cuda" else (256, 64)

layers = [m for _ in range(4) for m in (nn.Linear(width, width), nn.ReLU())]
model = nn.Sequential(*layers, nn.Linear(width, 10)).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
path = os.path.join(tempfile.mkdtemp(), "model.pt")
x = torch.randn(batch, width, device=device)
y = torch.randint(0, 10, (batch,), device=device)

for step in range(args.steps):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 500 == 0:
        torch.save(model.state_dict(), path)
