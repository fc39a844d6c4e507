"""Fixed: accumulates on the device; reads back once at the end."""
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

loss_sum = torch.zeros((), device=device)
acc_sum = torch.zeros((), device=device)
for step in range(args.steps):
    out = model(x)
    loss = nn.functional.cross_entropy(out, y)
    loss_sum += loss.detach()
    acc_sum += (out.argmax(1) == y).float().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
print(f"mean loss {loss_sum.item() / args.steps:.4f} acc {acc_sum.item() / args.steps:.3f}")
