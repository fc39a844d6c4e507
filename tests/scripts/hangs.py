import time

import torch

model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(4):
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
while True:
    time.sleep(0.05)
