import torch
from torch import nn

netG = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32)).cuda()  # ok: once per script, at the first
netD = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 1)).cuda()  # expect: no-compile
optD = torch.optim.Adam(netD.parameters())
optG = torch.optim.Adam(netG.parameters())
for step in range(100):
    real = torch.randn(8, 32, device="cuda")
    lossD = netD(real).mean() - netD(netG(torch.randn(8, 16, device="cuda")).detach()).mean()
    optD.zero_grad()
    lossD.backward()
    optD.step()
    lossG = -netD(netG(torch.randn(8, 16, device="cuda"))).mean()
    optG.zero_grad()
    lossG.backward()
    optG.step()
