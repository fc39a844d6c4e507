import torch
from torch.utils.data import DataLoader as DL, TensorDataset

ds = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
loader = DL(ds, batch_size=8)
model = torch.nn.Linear(4, 1).cuda()  # ok: the model, not a batch
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step, batch in enumerate(loader):
    x, y = batch
    x = x.to("cuda", non_blocking=True)  # expect: blocking-h2d
    y = y.cuda()  # expect: blocking-h2d
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()

pinned = DL(ds, batch_size=8, pin_memory=True)
for x, y in pinned:
    x, y = x.to("cuda"), y.to("cuda", non_blocking=True)  # expect: blocking-h2d
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
