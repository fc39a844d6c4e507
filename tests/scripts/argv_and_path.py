"""Checks what the user's script sees: its own argv, its own folder first on
sys.path, and none of trainprof's folders (tests/, examples/, rules/)."""
import importlib.util
import os
import sys

import torch

assert sys.argv[1:] == ["--lr", "0.5", "two words"], sys.argv
assert sys.path[0] == os.path.dirname(os.path.abspath(__file__)), sys.path[:3]
# trainprof's repo must not be on the path (another package may ship its own "examples").
repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for name in ("examples", "rules", "tests"):
    spec = importlib.util.find_spec(name)
    where = list(spec.submodule_search_locations or []) + [spec.origin or ""] if spec else []
    assert not any(str(w).startswith(repo + os.sep) for w in where), f"{name} importable from {where}"

model = torch.nn.Linear(8, 8)
opt = torch.optim.SGD(model.parameters(), lr=float(sys.argv[2]))
for step in range(30):
    model(torch.randn(4, 8)).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
