import torch as T
from torch import nn

net = nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, 1024)).cuda()
opt = T.optim.AdamW(net.parameters())
x = T.randn(64, 1024, device="cuda")

for step in range(100):  # ok: reported at the model's call, not the loop header
    loss = net(x).square().mean()  # expect: fp32-compute
    opt.zero_grad()
    loss.backward()
    opt.step()
