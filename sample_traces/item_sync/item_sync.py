"""Slow: reads the loss and the accuracy back to the CPU on every step."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
dim, batch = (1024, 256) if device == "cuda" else (128, 32)

layer = nn.TransformerEncoderLayer(dim, 8, 4 * dim, batch_first=True)
model = nn.Sequential(nn.TransformerEncoder(layer, 4), nn.Flatten(), nn.LazyLinear(10)).to(device)
x = torch.randn(batch, 32, dim, device=device)
y = torch.randint(0, 10, (batch,), device=device)
model(x)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

losses, accs = [], []
for step in range(args.steps):
    out = model(x)
    loss = nn.functional.cross_entropy(out, y)
    losses.append(loss.item())
    accs.append((out.argmax(1) == y).float().mean().item())
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"mean loss {sum(losses) / len(losses):.4f} acc {sum(accs) / len(accs):.3f}")
