import torch
import torch as T

model = torch.nn.Linear(4, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(8, 4, device="cuda")  # ok: built on the device, before the loop
for step in range(100):
    w = torch.tensor([1.0, 2.0, 3.0, 4.0]).to("cuda")  # expect: host-alloc
    pos = T.arange(4).float().cuda()  # expect: host-alloc
    mask = torch.ones(8, 4, device="cpu").to(x.device)  # expect: host-alloc
    loss = (model(x) * w + pos * mask).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
