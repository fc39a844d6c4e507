# fixture: lines=8
import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
aux = torch.optim.SGD(model.parameters(), lr=0.0)
for step in range(10):
    opt.zero_grad()
    aux.zero_grad(set_to_none=False)  # not at a finding line: left as is
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
