# fixture: lines=17
import torch
from torch import nn
from torch.optim import Adam

device = "cuda"
model = nn.Linear(4, 4)
model.to(device)
other = nn.Linear(4, 4).cuda()
opt = Adam(model.parameters(), lr=1e-3, fused=True)
opt_other = Adam(other.parameters(), lr=1e-3)  # not at a finding line: left as is

for step in range(10):
    loss = model(torch.randn(2, 4, device=device)).sum() + other(torch.randn(2, 4, device=device)).sum()
    loss.backward()
    opt_other.step()
    opt.step()
    opt.zero_grad()
