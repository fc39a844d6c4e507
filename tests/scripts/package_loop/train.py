"""The training loop lives in a package beside the script (mylib/loop.py), which dumps a JSON
record of 40,000 floats every step: the finding must point there (Issue 23's package-loop trap)."""
import argparse

import torch
from mylib.loop import fit
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=300)
args = p.parse_args()
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
fit(model, opt, args.steps)
