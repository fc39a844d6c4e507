import torch
from torch import nn

torch.backends.cudnn.benchmark = True  # ok: the fix
model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU()).cuda()  # ok: benchmark set at line 4
