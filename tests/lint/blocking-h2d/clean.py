import torch
from torch.utils.data import DataLoader, TensorDataset

ds = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
loader = DataLoader(ds, batch_size=8, pin_memory=True)
model = torch.nn.Linear(4, 1).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = [torch.randn(8, 4).pin_memory() for _ in range(10)]
for epoch in range(2):
    for x, y in loader:
        x = x.to("cuda", non_blocking=True)  # ok: non_blocking from pinned memory (the fix)
        y = y.cuda(non_blocking=True)  # ok: non_blocking from pinned memory
        x = x.to(torch.float16).float()  # ok: a dtype cast, not a copy
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    for x, _ in loader:  # not a training loop
        print(x.to("cuda").sum())  # ok: not a training loop
for x in data:
    loss = model(x.cuda(non_blocking=True)).pow(2).mean()  # ok: pinned on the host, copied asynchronously
    loss.backward()
    opt.step()
