"""Reads its flags with argparse: `-- --flag value` must reach it untouched (also options
that trainprof itself has, such as --timeout)."""
import argparse

import torch

p = argparse.ArgumentParser()
p.add_argument("--flag", required=True)
p.add_argument("--timeout", type=int, required=True)
p.add_argument("--verbose", action="store_true")
args = p.parse_args()
assert (args.flag, args.timeout, args.verbose) == ("value", 7, True), args
model = torch.nn.Linear(8, 8)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(30):
    model(torch.randn(4, 8)).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
