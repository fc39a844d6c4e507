import torch
from torch import nn
from torch.nn import BatchNorm2d, Conv2d


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)  # expect: conv-bias-before-bn
        self.bn1 = BatchNorm2d(c)
        self.conv2 = Conv2d(c, c, 3, padding=1)  # expect: conv-bias-before-bn
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, 1)  # ok: output also used by the residual
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        y = self.conv2(x)
        y = self.bn2(y)
        z = self.conv3(y)
        return self.bn3(z) + z
