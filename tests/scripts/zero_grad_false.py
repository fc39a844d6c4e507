"""zero_grad(set_to_none=False): every step fills each gradient of a deep stack with zeros."""
import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=20)
args = p.parse_args()
torch.manual_seed(0)
model = nn.Sequential(*[nn.Linear(32, 32) for _ in range(40)])
opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
x, y = torch.randn(8, 32), torch.randn(8, 32)
losses = []
for step in range(args.steps):
    opt.zero_grad(set_to_none=False)
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
print("\n".join(repr(v) for v in losses))  # exact floats, for the parity test
