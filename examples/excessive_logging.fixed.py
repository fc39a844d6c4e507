"""Fixed, as trainprof advises: the loss every 10 steps, the histograms every 500."""
import argparse
import tempfile

import torch
from torch import nn
from torch.utils.tensorboard import SummaryWriter

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
width = 2048 if device == "cuda" else 256

model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10)).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
writer = SummaryWriter(tempfile.mkdtemp())
x = torch.randn(512, width, device=device)
y = torch.randint(0, 10, (512,), device=device)

for step in range(args.steps):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 10 == 0:
        print(f"step {step} loss {loss}")
        writer.add_scalar("loss", loss, step)
    if step % 500 == 0:
        for name, p_ in model.named_parameters():
            writer.add_histogram(name, p_, step)
writer.close()
