import torch
from torch import nn

model = nn.Linear(4, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
with torch.autocast("cuda"):  # the whole loop runs under autocast
    for step in range(10):
        loss = model(torch.randn(2, 4, device="cuda")).sum()
        loss.backward()
        opt.step()
        opt.zero_grad()
