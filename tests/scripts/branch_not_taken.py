"""A debugging call in the training loop, under a branch this run never takes."""
import torch

model = torch.nn.Linear(16, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
debug = False
for step in range(40):
    x = torch.randn(32, 16)
    loss = model(x).pow(2).mean()
    if debug:
        torch.autograd.set_detect_anomaly(True)
    loss.backward()
    opt.step()
    opt.zero_grad()
