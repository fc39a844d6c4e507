import numpy as np
import torch
from torch import nn

device = torch.device("cuda")
model = nn.Linear(16, 4).to(device)
crit = nn.CrossEntropyLoss()
opt = torch.optim.AdamW(model.parameters(), fused=True)


def accuracy(out, y):
    return (out.argmax(1) == y).float().mean().item()  # expect: item-sync


def report(out, y):
    return (out.argmax(1) == y).float().mean().item()  # ok: called only every 100 steps


for step in range(1000):
    x = torch.randn(32, 16, device=device)
    y = torch.randint(0, 4, (32,), device=device)
    out = model(x)
    loss = crit(out, y)
    acc = (out.argmax(1) == y).float().mean().item()  # expect: item-sync
    train_acc = accuracy(out, y)
    preds = out.argmax(1).cpu()  # expect: item-sync
    probs = out.softmax(-1).to("cpu")  # expect: item-sync
    value = float(loss)  # expect: item-sync
    hist = np.asarray(preds)  # ok: preds is already on the host
    rate = float(step) / 1000  # ok: a Python number
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 100 == 0:
        print(f"step {step} loss {loss.item():.3f} acc {acc:.3f} {report(out, y):.3f}")  # ok: every 100 steps
        print(out.to("cpu").sum())  # ok: every 100 steps
