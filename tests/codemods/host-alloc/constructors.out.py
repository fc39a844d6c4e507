import torch as T
from torch import nn

device = "cuda" if T.cuda.is_available() else "cpu"
seq, dim = 8, 4
model = nn.Linear(dim, dim).to(device)
opt = T.optim.SGD(model.parameters(), lr=0.1)
data = T.randn(seq, dim)
for step in range(10):
    x = data.to(device)
    pos = T.arange(seq, device=device).float()  # positions
    mask = T.tensor([1.0, 0.5, 0.25, 0.0], device=device)
    eye = T.eye(dim, dtype=T.float64, device=device).float()
    zero = T.zeros(dim, device=T.device("cuda")) if T.cuda.is_available() else T.zeros(dim)
    ones = (T.ones(seq, 1, device="cuda"))
    half = T.full((seq, 1), 0.5, device="cuda:0")
    buf = T.empty(0, device=device)
    idx = T.as_tensor([0, 2], device=device)
    steps = T.arange(0, seq, 2, device=device)
    loss = (model(x + pos[:, None]) * mask @ eye + zero).sum() + ones.sum() * half.sum() + buf.sum() + steps.sum()
    loss = loss + model(x)[idx].sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
