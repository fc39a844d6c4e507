import torch
import torch as T

model = torch.nn.Linear(4, 2).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    x = torch.randn(8, 4, device="cuda")
    y = torch.randint(-1, 2, (8,), device="cuda")
    out = model(x)
    valid = y >= 0  # ok: builds a mask, indexes nothing
    keep = (out.sum(1) != 0).bool()  # ok: builds a mask
    both = valid & keep  # ok: builds a mask
    loss = out[valid].pow(2).mean()  # expect: mask-index-sync
    loss = loss + out[x[:, 0] > 0].sum()  # expect: mask-index-sync
    loss = loss + out[:, both].sum()  # expect: mask-index-sync
    idx = y.nonzero()  # expect: mask-index-sync
    classes = T.unique(y)  # expect: mask-index-sync
    picked = torch.masked_select(x, x > 0)  # expect: mask-index-sync
    where = T.where(y > 0)  # expect: mask-index-sync
    rep = x.repeat_interleave(y.clamp(min=0), dim=0)  # expect: mask-index-sync
    nz = torch.nonzero(y)  # expect: mask-index-sync
    loss.backward()
    opt.step()
    opt.zero_grad()
