import argparse

import torch

p = argparse.ArgumentParser()
p.add_argument("--device", default="cuda")
args = p.parse_args()
model = torch.nn.Linear(4, 4).to(args.device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    w = torch.ones(4).to(args.device)
    v = torch.zeros(4).to(model.weight.device)
    u = torch.zeros(4).to(w)
    h = torch.ones(4).to("cpu")  # already built there
    loss = model(w + v + u + h.to(args.device)).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
