import torch
import torch as T

model = torch.nn.Linear(4, 2).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
data = torch.randn(100, 4)
labels = torch.randint(0, 2, (100,))
subset = data[labels > 0]  # ok: before the loop: once
classes = T.unique(labels)  # ok: before the loop
for step in range(100):
    x = torch.randn(8, 4, device="cuda")
    y = torch.randint(-1, 2, (8,), device="cuda")
    out = model(x)
    valid = y >= 0  # ok: builds a mask, indexes nothing
    loss = (out.pow(2).mean(1) * valid).sum() / valid.sum().clamp(min=1)  # ok: multiplies by the mask (the fix)
    safe = T.where(y > 0, out[:, 0], torch.zeros_like(out[:, 0]))  # ok: three arguments: no sync
    rep = x.repeat_interleave(2, dim=0)  # ok: constant repeats
    first = out[0]  # ok: an int index
    cols = out[:, 1:]  # ok: a slice
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step % 100 == 0:
        print(out[valid].mean(), y.nonzero())  # ok: throttled
print(out[out > 0].sum(), torch.nonzero(y))  # ok: after the loop
