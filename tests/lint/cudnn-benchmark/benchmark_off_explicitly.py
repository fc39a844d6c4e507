from torch.backends import cudnn
import torch.nn as nn

cudnn.benchmark = False  # ok: variable-size inputs: a deliberate choice
model = nn.Conv2d(3, 64, 3)  # ok: benchmark decided at line 4
