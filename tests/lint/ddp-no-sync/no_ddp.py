import torch

model = torch.nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i in range(40):
    model(torch.randn(16, 8)).pow(2).mean().backward()  # ok: no DDP model
    if (i + 1) % 4 == 0:
        opt.step()
        opt.zero_grad()
