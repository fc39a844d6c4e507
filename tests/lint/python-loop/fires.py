import torch
import torch.nn.functional as F

model = torch.nn.Linear(4, 3)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
crit = torch.nn.CrossEntropyLoss()
x = torch.randn(8, 4)
y = torch.randint(0, 3, (8,))


def per_sample(out, y):
    total = 0
    for i in range(out.size(0)):  # expect: python-loop
        total = total + F.cross_entropy(out[i:i + 1], y[i:i + 1])
    return total


for step in range(100):  # ok: the training loop itself
    out = model(x)
    loss = 0
    for i in range(x.shape[0]):  # expect: python-loop
        loss = loss + crit(out[i:i + 1], y[i:i + 1])
    for i in range(0, len(out)):  # expect: python-loop
        loss = loss + out[i].pow(2).sum()
    loss = loss + per_sample(out, y)
    loss.backward()
    opt.step()
    opt.zero_grad()
