"""Gradient accumulation: optimizer.step() once every ACCUM=4 batches."""
import torch

ACCUM = 4
model = torch.nn.Linear(8, 8)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for batch in range(30 * ACCUM):
    loss = model(torch.randn(4, 8)).pow(2).mean() / ACCUM
    loss.backward()
    if (batch + 1) % ACCUM == 0:
        opt.step()
        opt.zero_grad()
