"""Slow: a GPU-bound transformer encoder trained in plain fp32."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=60)
args = p.parse_args()
device = "cuda" if torch.cuda.is_available() else "cpu"
dim, depth, batch, seq = (1024, 8, 12, 512) if device == "cuda" else (64, 2, 4, 32)

layer = nn.TransformerEncoderLayer(dim, 8, 4 * dim, batch_first=True)
model = nn.TransformerEncoder(layer, depth).to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x = torch.randn(batch, seq, dim, device=device)
target = torch.randn(batch, seq, dim, device=device)

for step in range(args.steps):
    out = model(x)
    loss = nn.functional.mse_loss(out, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
