import torch
from torch import nn

model = nn.Linear(1024, 1024).cuda()
opt = torch.optim.AdamW(model.parameters(), fused=True)
x = torch.randn(64, 1024, device="cuda")
for step in range(100):
    with torch.autocast("cuda", dtype=torch.bfloat16):  # ok: the fix
        loss = model(x).float().square().mean()  # ok: inside the mixed-precision region
    opt.zero_grad()
    loss.backward()
    opt.step()
