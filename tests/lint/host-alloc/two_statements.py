import numpy as np
import torch

device = torch.device("cuda")
model = torch.nn.Linear(10, 10).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
table = torch.arange(10)  # ok: once, before the loop
for step in range(100):
    x_np = np.random.randn(32, 10).astype(np.float32)
    x = torch.from_numpy(x_np)  # expect: host-alloc
    x = x.to(device)  # ok: the copy is blocking-h2d's; host-alloc names where it is built
    labels = torch.tensor([step % 10] * 32)  # expect: host-alloc
    w = torch.zeros(10)  # expect: host-alloc
    w[step % 10] = 1.0
    idx = table[step % 10].cuda()  # ok: built once before the loop, only copied here
    loss = torch.nn.functional.cross_entropy(model(x) * w.cuda(), labels.to(device))
    staged = torch.from_numpy(x_np).pin_memory()  # ok: pinned and copied asynchronously
    staged = staged.to(device, non_blocking=True)
    on_gpu = torch.ones(10, device=device)  # ok: built on the device
    host_only = torch.zeros(10)  # ok: never copied to the device
    print(host_only.sum(), on_gpu.sum(), staged.sum(), idx)
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step % 100 == 0:
        probe = torch.from_numpy(x_np)  # ok: every 100 steps
        print(model(probe.to(device)).sum())
