"""Fixed: writes the gradient histograms every 100 steps and the parameter ones every 500, as
trainprof advises from their measured cost."""
import argparse
import tempfile

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
width, batch = (2048, 4096) if device == "cuda" else (256, 64)

layers = [m for _ in range(4) for m in (nn.Linear(width, width), nn.ReLU())]
model = nn.Sequential(*layers, nn.Linear(width, 10)).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
writer = SummaryWriter(tempfile.mkdtemp())
x = torch.randn(batch, width, device=device)
y = torch.randint(0, 10, (batch,), device=device)

for step in range(args.steps):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    for name, p_ in model.named_parameters():
        if step % 500 == 0:
            writer.add_histogram(f"param/{name}", p_, step)
        if step % 100 == 0:
            writer.add_histogram(f"grad/{name}", p_.grad, step)
writer.close()
