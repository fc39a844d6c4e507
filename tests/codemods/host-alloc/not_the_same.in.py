import torch

device = torch.device("cuda")
model = torch.nn.Linear(4, 4).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
start, step_size = 0.5, 0.25
for step in range(10):
    grid = torch.linspace(0, 1, 4).to(device)  # device kernels may round differently
    ramp = torch.arange(0, 1, 0.25).to(device)
    shifted = torch.arange(start, 4 + start).to(device)
    leaf = torch.zeros(4, requires_grad=True).to(device)
    pinned = torch.zeros(4, pin_memory=True).to(device)
    there = torch.zeros(4, device="cpu").to(device)
    lst = torch.tensor([1.0, 2.0, 3.0, 4.0]).to(  # a comment that would be lost
        device)
    kw = dict(dtype=torch.float32)
    other = torch.ones(4, **kw).to(device)
    loss = model(grid + ramp + shifted + leaf + pinned + there + lst + other).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
