import torch
from torch.utils.data import DataLoader, TensorDataset

src = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8, num_workers=2)
tgt = DataLoader(TensorDataset(torch.randn(64, 4)), batch_size=8, num_workers=2, pin_memory=True)
model = torch.nn.Linear(4, 1).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i, ((xs, ys), (xt,)) in enumerate(zip(src, tgt)):
    xs = xs.to("cuda", non_blocking=True)  # expect: blocking-h2d
    ys = ys.cuda()  # expect: blocking-h2d
    xt = xt.to("cuda", non_blocking=True)  # ok: pinned and asynchronous
    loss = (model(xs) - ys).pow(2).mean() + model(xt).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
