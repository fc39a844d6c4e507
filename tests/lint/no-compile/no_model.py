import torch

w = torch.zeros(4, requires_grad=True)
opt = torch.optim.SGD([w], lr=0.1)
for step in range(100):  # ok: no nn.Module to compile
    loss = (torch.randn(8, 4) @ w).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
