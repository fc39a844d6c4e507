import torch
from torch import nn

device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")
model = nn.Sequential(nn.Conv2d(3, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.Flatten(), nn.LazyLinear(10)).to(device)
crit = nn.CrossEntropyLoss()
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def train(model, batches):
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        opt.zero_grad()  # ok: not the model
        out = model(x)  # expect: fp32-compute
        loss = crit(out, y)  # ok: the loss, after the forward
        loss.backward()
        opt.step()


def evaluate(model, batches):
    with torch.no_grad():
        return [model(x.to(device)) for x, _ in batches]  # ok: evaluation, not the training step


for epoch in range(3):
    train(model, [(torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,)))] * 4)
    evaluate(model, [(torch.randn(8, 3, 32, 32), None)])
