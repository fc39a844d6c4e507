import torch
from torch import nn

model = nn.Linear(256, 256)  # ok: a CPU script: no Tensor Cores to miss
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    loss = model(torch.randn(8, 256)).square().mean()  # ok: on the CPU
    opt.zero_grad()
    loss.backward()
    opt.step()
