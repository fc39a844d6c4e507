import sys

import torch
from torch import nn

device = sys.argv[1]
model = nn.Linear(4, 4).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    x = torch.randn(2, 4).to(device)
    loss = model(x).sum()
    loss.backward()
    opt.step()
    opt.zero_grad()
