"""Tabular regression: a small MLP over a numpy array, sampled by hand in a while loop."""
import numpy as np
import torch
from torch import nn

cuda = torch.cuda.is_available()
device = torch.device("cuda" if cuda else "cpu")

X = np.random.randn(200_000, 32).astype(np.float32)
Y = (X[:, :4].sum(1, keepdims=True) + 0.1 * np.random.randn(200_000, 1)).astype(np.float32)

model = nn.Sequential(  # expect: no-compile
    nn.Linear(32, 128), nn.ReLU(),
    nn.Linear(128, 128), nn.ReLU(),
    nn.Linear(128, 1),
).to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # expect: unfused-optimizer
loss_fn = nn.MSELoss()

batch_size = 64
max_steps = 50_000
step = 0
ema = None
while step < max_steps:
    idx = np.random.randint(0, len(X), size=batch_size)
    xb = torch.from_numpy(X[idx]).to(device)  # expect: host-alloc
    yb = torch.from_numpy(Y[idx]).to(device)  # expect: host-alloc
    pred = model(xb)
    loss = loss_fn(pred, yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    lv = loss.item()  # expect: item-sync
    ema = lv if ema is None else 0.99 * ema + 0.01 * lv
    if step % 1000 == 0:
        print(f"step {step:6d}  loss(ema) {ema:.4f}")  # ok: every 1000 steps, a Python float
    step += 1
