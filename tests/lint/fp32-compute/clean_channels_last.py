import torch
from torch import nn

device = torch.device("cuda")
model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3)).to(device)
model = model.to(memory_format=torch.channels_last)  # ok: NHWC (the fix)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    x = torch.randn(64, 3, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        loss = model(x).float().square().mean()  # ok: bf16 and channels_last
    opt.zero_grad()
    loss.backward()
    opt.step()
