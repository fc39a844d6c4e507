import torch
from torch.nn.parallel import DistributedDataParallel as DDP

model = DDP(torch.nn.Linear(8, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i in range(40):
    model(torch.randn(16, 8)).pow(2).mean().backward()  # ok: the optimizer steps every iteration
    opt.step()
    opt.zero_grad()
    if i % 10 == 0:
        print(i)
