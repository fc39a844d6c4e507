import torch
from torch import nn
from torch.cuda.amp import autocast

model = nn.Linear(4, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    with autocast(dtype=torch.bfloat16):
        loss = model(torch.randn(2, 4, device="cuda")).sum()
    loss.backward()
    opt.step()
    opt.zero_grad()
