import torch
from torch.utils.data import DataLoader, TensorDataset

# built at import time: spawned workers (macOS, Windows) would import this module and train again
loader = DataLoader(TensorDataset(torch.randn(256, 8), torch.randn(256, 1)), batch_size=16)
model = torch.nn.Linear(8, 1).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step, (x, y) in enumerate(loader):
    loss = torch.nn.functional.mse_loss(model(x.cuda()), y.cuda())
    loss.backward()
    opt.step()
    opt.zero_grad()
