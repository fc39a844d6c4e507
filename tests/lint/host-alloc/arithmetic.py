import torch

model = torch.nn.Linear(16, 16).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    b = 8
    x = torch.randn(2 * b, 16, device="cuda")
    labels = torch.cat([torch.arange(b) + b, torch.arange(b)]).to("cuda")  # expect: host-alloc
    scale = (1.0 - torch.rand(b)).cuda()  # expect: host-alloc
    offs = (x.sum() + torch.ones(())).cuda()  # ok: x is on the device already
    loss = torch.nn.functional.cross_entropy(model(x), labels) * scale.mean() + offs
    loss.backward()
    opt.step()
    opt.zero_grad()
