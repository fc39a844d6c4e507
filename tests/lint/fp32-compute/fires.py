import torch as T
from torch import nn

net = nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024)).cuda()
opt = T.optim.AdamW(net.parameters())
x = T.randn(64, 1024, device="cuda")

for step in range(100):
    loss = net(x).square().mean()  # expect
    opt.zero_grad()
    loss.backward()
    opt.step()
