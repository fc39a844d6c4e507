import numpy as np
import torch

device = "cuda" if torch.cuda.is_available() else "cpu"
model = torch.nn.Linear(64, 64).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
batches = [torch.randn(32, 64) for _ in range(8)]  # ok: built once; its copies are flagged
pinned = [torch.randn(32, 64).pin_memory() for _ in range(8)]
for step in range(100):
    x = batches[step % 8].to(device)  # expect: blocking-h2d
    x2 = batches[step % 8].to(device, non_blocking=True)  # expect: blocking-h2d
    x3 = pinned[step % 8].to(device, non_blocking=True)  # ok: pinned and asynchronous
    noise = torch.from_numpy(np.random.randn(32, 64).astype(np.float32))
    noise = noise.to(device)  # expect: blocking-h2d
    const = torch.ones(64).to(device)  # ok: in the factory's own expression: host-alloc's
    out = model(x + x2 + x3 + noise) * const
    loss = out.pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    if device == "cpu":
        y = batches[0].to(device)  # ok: the CPU path
