import sys

import torch
from torch.utils.data import DataLoader

dev = "cuda"
if len(sys.argv) > 1:
    dev = sys.argv[1]  # bound twice: not a device the codemod can reason about
loader = DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=2)
model = torch.nn.Linear(2, 1).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for (x,) in loader:
    x = x.to(dev)
    z = x.to(model.weight.device)
    w = x.to(model.weight)
    loss = model(x).sum() + model(z).sum() + model(w).sum()
    loss.backward()
    opt.step()
