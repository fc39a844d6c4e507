import torch
from torch import nn

torch.use_deterministic_algorithms(True)  # ok: deterministic results asked for
model = nn.Conv2d(3, 64, 3)  # ok: deterministic algorithms chosen at line 4
