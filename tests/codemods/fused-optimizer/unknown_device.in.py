import argparse

import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--device", default="cuda")
args = p.parse_args()

model = nn.Linear(4, 4).to(args.device)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # device from the command line: unknown
groups = [{"params": model.weight}, {"params": model.bias, "lr": 0.0}]
opt2 = torch.optim.Adam(groups, lr=1e-3)  # parameter groups: cannot tell where they live
half = nn.Linear(4, 4).to(torch.bfloat16)
opt3 = torch.optim.SGD(half.parameters(), lr=0.1)  # a dtype, not a device
opt4 = torch.optim.Adagrad(model.parameters())  # no fused kernel here
