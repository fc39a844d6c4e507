import torch  # no near-miss: its one DataParallel call fires
from torch import nn

model = nn.DataParallel(nn.Linear(8, 8).cuda())  # expect: dataparallel
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(10):
    model(torch.randn(4, 8, device="cuda")).sum().backward()
    opt.step()
    opt.zero_grad()
