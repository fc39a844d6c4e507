import torch
from torch import nn

device = "cuda"
model = nn.Linear(4, 4).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
history = [0.0]
prev = torch.zeros(4, device=device)
for step in range(10):
    pos = torch.arange(step + 1, device=device)  # depends on the step
    hist = torch.tensor(history, device=device)  # history grows below
    noise = torch.randn(4, device=device)  # random: a new draw each step
    leaf = torch.zeros(4, device=device, requires_grad=True)
    used = prev.sum()
    prev = torch.zeros(4, device=device)  # read above before it is built
    if step % 2 == 0:
        odd = torch.ones(4, device=device)  # under an if
    scale = torch.tensor(float(step), device=device)
    loss = (model(noise + leaf) * scale).sum() + pos.sum() + hist.sum() + used
    history.append(loss.item())
    opt.zero_grad()
    loss.backward()
    opt.step()
