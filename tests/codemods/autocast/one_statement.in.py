import torch
from torch import nn

model = nn.Linear(4, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    model(torch.randn(2, 4, device="cuda")).sum().backward()  # forward and backward in one statement
    opt.step()
    opt.zero_grad()
