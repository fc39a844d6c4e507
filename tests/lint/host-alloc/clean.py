import torch

model = torch.nn.Linear(4, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(8, 4, device="cuda")
w = torch.tensor([1.0, 2.0, 3.0, 4.0]).to("cuda")  # ok: before the loop: once
arrays = [torch.randn(8, 4).numpy() for _ in range(4)]
for step in range(100):
    pos = torch.arange(4, device="cuda").float()  # ok: built on the device (the fix)
    b = torch.from_numpy(arrays[step % 4]).pin_memory().to("cuda", non_blocking=True)  # ok: host data, pinned, async
    if step % 100 == 0:
        scale = torch.full((1,), 0.5).to("cuda")  # ok: throttled
    z = torch.zeros_like(x)  # ok: follows x's device
    loss = (model(x + b + z) * w + pos).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    y = torch.zeros(4).to("cpu")  # ok: to the CPU
