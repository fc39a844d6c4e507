"""Fixed: cross_entropy's ignore_index drops the padded labels with fixed shapes: no sync."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
depth, width, batch, classes = (8, 1024, 1024, 1000) if device == "cuda" else (4, 128, 64, 50)

torch.manual_seed(0)
model = nn.Sequential(*[m for _ in range(depth) for m in (nn.Linear(width, width), nn.GELU())],
                      nn.Linear(width, classes)).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x = torch.randn(batch, width, device=device)
y = torch.randint(0, classes, (batch,), device=device)
y[::10] = -1  # padding: no label

for step in range(args.steps):
    out = model(x)
    loss = nn.functional.cross_entropy(out, y, ignore_index=-1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
