"""Slow: a launch-bound LSTMCell loop that reads the loss back with .item() on every step."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
hidden, batch, seq = (128, 16, 64) if device == "cuda" else (64, 8, 32)

cell = nn.LSTMCell(hidden, hidden).to(device)
head = nn.Linear(hidden, 10).to(device)
opt = torch.optim.Adam(list(cell.parameters()) + list(head.parameters()), lr=1e-3)
x = torch.randn(seq, batch, hidden, device=device)
y = torch.randint(0, 10, (batch,), device=device)

losses = []
for step in range(args.steps):
    h = torch.zeros(batch, hidden, device=device)
    c = torch.zeros(batch, hidden, device=device)
    for t in range(seq):
        h, c = cell(x[t], (h, c))
    loss = nn.functional.cross_entropy(head(h), y)
    losses.append(loss.item())
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"mean loss {sum(losses) / len(losses):.4f}")
