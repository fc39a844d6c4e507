"""Checks what the user's script sees: its own argv, its own folder first on
sys.path, and none of trainprof's folders (tests/, examples/, rules/)."""
import importlib.util
import os
import sys

import torch

assert sys.argv[1:] == ["--lr", "0.5", "two words"], sys.argv
assert sys.path[0] == os.path.dirname(os.path.abspath(__file__)), sys.path[:3]
for name in ("examples", "rules"):
    assert importlib.util.find_spec(name) is None, f"{name} importable from {sys.path}"

model = torch.nn.Linear(8, 8)
opt = torch.optim.SGD(model.parameters(), lr=float(sys.argv[2]))
for step in range(30):
    model(torch.randn(4, 8)).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
