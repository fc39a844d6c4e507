import torch
import torch as T

model = torch.nn.Linear(4, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(8, 4, device="cuda")
for step in range(100):
    w = torch.tensor([1.0, 2.0, 3.0, 4.0]).to("cuda")  # expect
    pos = T.arange(4).float().cuda()  # expect
    mask = torch.ones(8, 4, device="cpu").to(x.device)  # expect
    loss = (model(x) * w + pos * mask).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
