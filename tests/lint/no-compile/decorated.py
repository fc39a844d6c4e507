import torch
from torch import nn

model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)


@torch.compile  # ok: the step is compiled
def train_step(x):
    loss = model(x).pow(2).mean()
    loss.backward()
    return loss


for step in range(100):  # ok: the step is compiled
    train_step(torch.randn(8, 4))
    opt.step()
    opt.zero_grad()
