import argparse

import torch
import torch as T
from torch.autograd import gradcheck

p = argparse.ArgumentParser()
p.add_argument("--debug", action="store_true")
args = p.parse_args()
T.autograd.set_detect_anomaly(False)  # ok: False
T.autograd.set_detect_anomaly(args.debug)  # ok: not a literal: the user's choice
torch.use_deterministic_algorithms(False)  # ok: False
torch.cuda.set_sync_debug_mode(0)  # ok: 0: off

model = torch.nn.Linear(4, 1).double()
x0 = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
gradcheck(model, (x0,))  # ok: before training: once
opt = torch.optim.SGD(model.parameters(), lr=0.1)
with torch.autograd.profiler.profile() as prof:
    for step in range(100):
        with torch.autograd.profiler.record_function("step"):
            loss = model(torch.randn(8, 4, dtype=torch.float64)).pow(2).mean()
            loss.backward()
        opt.step()
        opt.zero_grad()
        if step % 1000 == 0:
            gradcheck(model, (x0,))  # ok: throttled
with torch.autograd.detect_anomaly():  # ok: after training, a debugging check
    model(x0).sum().backward()
