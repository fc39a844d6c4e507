import torch
import torch as T

model = torch.nn.Linear(4, 2).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    x = torch.randn(8, 4, device="cuda")
    y = torch.randint(-1, 2, (8,), device="cuda")
    out = model(x)
    valid = y >= 0
    keep = (out.sum(1) != 0).bool()
    both = valid & keep
    loss = out[valid].pow(2).mean()  # expect
    loss = loss + out[x[:, 0] > 0].sum()  # expect
    loss = loss + out[:, both].sum()  # expect
    idx = y.nonzero()  # expect
    classes = T.unique(y)  # expect
    picked = torch.masked_select(x, x > 0)  # expect
    where = T.where(y > 0)  # expect
    rep = x.repeat_interleave(y.clamp(min=0), dim=0)  # expect
    nz = torch.nonzero(y)  # expect
    loss.backward()
    opt.step()
    opt.zero_grad()
