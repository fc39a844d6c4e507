import torch
import torch.nn as nn

model = nn.Sequential(nn.Linear(1500, 4096), nn.ReLU(), nn.Linear(4096, 10)).cuda()  # ok: fp32 only
x = torch.randn(8, 1500, device="cuda", dtype=torch.float32)
with torch.autocast("cpu", dtype=torch.bfloat16):  # ok: CPU autocast: no Tensor Cores
    pass
