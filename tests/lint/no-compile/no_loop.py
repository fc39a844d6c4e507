import torch

model = torch.nn.Linear(4, 1)
with torch.no_grad():
    for x in torch.randn(10, 8, 4):  # ok: no backward or step: not a training loop
        print(model(x).sum())
