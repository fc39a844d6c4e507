import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)  # ok: bias=False (the fix)
        self.bn = nn.BatchNorm2d(c)
        self.head = nn.Conv2d(c, c, 1)  # ok: a ReLU between it and the BatchNorm
        self.norm = nn.BatchNorm2d(c)

    def forward(self, x):
        x = self.bn(self.conv(x))
        x = self.head(x)
        x = torch.relu(x)  # activation between conv and BN: the bias is not cancelled
        return self.norm(x)


seq = nn.Sequential(
    nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),  # ok: bias=False
    nn.Conv2d(64, 64, 3), nn.ReLU(), nn.BatchNorm2d(64),  # ok: a ReLU before the BatchNorm
    nn.Conv2d(64, 64, 3), nn.GroupNorm(8, 64),  # ok: GroupNorm, not BatchNorm
)
