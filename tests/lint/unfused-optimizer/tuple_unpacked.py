import torch
from torch import nn

gen, disc = nn.Linear(16, 64).cuda(), nn.Linear(64, 1).cuda()
enc, head = nn.Linear(8, 8), nn.Linear(8, 2)
opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4)  # expect: unfused-optimizer
opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4)  # expect: unfused-optimizer
opt_e = torch.optim.Adam(enc.parameters())  # ok: unpacked too, but never moved to a GPU
for step in range(100):
    loss = disc(gen(torch.randn(8, 16, device="cuda"))).mean()
    loss.backward()
    opt_g.step()
    opt_d.step()
