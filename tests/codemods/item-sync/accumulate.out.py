import torch as T
from torch import nn

model = nn.Linear(4, 2)
opt = T.optim.SGD(model.parameters(), lr=0.1)
losses, accs = [], []
running = 0.0
for step in range(20):
    x = T.randn(8, 4)
    out = model(x)
    loss = out.pow(2).mean()  # a comment that stays
    losses.append(loss.detach())
    accs.append((out.argmax(1) == 0).float().mean().detach())
    running += loss.detach().double()
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step % 10 == 0:
        print(f"step {step}: {float(running) / (step + 1):.4f}")

print(sum([float(v) for v in losses]) / len(losses), max([float(v) for v in accs]), float(running))
