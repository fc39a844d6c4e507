import torch
from torch import nn

device = "cuda"
model = nn.Linear(4, 4).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    acc = torch.zeros(4, device=device)
    mask = torch.ones(4, device=device)
    buf = torch.empty(4, device=device)
    total = torch.zeros((), device=device)
    out_buf = torch.zeros(4, device=device)
    w = torch.ones(4, device=device)
    alias_src = torch.ones(4, device=device)
    mask[step % 4] = 0.0  # written into every step
    acc.add_(model.weight.sum(0))
    nn.init.uniform_(buf)
    total += acc.sum()
    torch.mul(acc, 2, out=out_buf)
    w = w * 2
    alias = alias_src
    alias.mul_(0.5)
    loss = (model(acc * mask + buf + out_buf + w + alias) + total).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
