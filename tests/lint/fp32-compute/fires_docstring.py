"""Trains in fp32 on purpose: bf16 autocast and channels_last were tried and lost accuracy."""
import torch
from torch import nn

model = nn.Linear(4096, 4096).cuda()
opt = torch.optim.AdamW(model.parameters(), fused=True)
for step in range(100):
    loss = model(torch.randn(64, 4096, device="cuda")).square().mean()  # expect: fp32-compute
    opt.zero_grad()  # ok: not the model
    loss.backward()
    opt.step()
