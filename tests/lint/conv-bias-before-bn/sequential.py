from collections import OrderedDict

import torch.nn as nn

stem = nn.Sequential(
    nn.Conv2d(3, 64, 7, 2, 3),  # expect: conv-bias-before-bn
    nn.BatchNorm2d(64),
    nn.ReLU(inplace=True),
    nn.Conv2d(64, 64, 3, 1, 1, 1, 1, True),  # expect: conv-bias-before-bn
    nn.BatchNorm2d(64),
    nn.Conv2d(64, 64, 3, padding=1, bias=True),  # expect: conv-bias-before-bn
    nn.SyncBatchNorm(64),
    nn.Conv2d(64, 64, 3, padding=1),  # ok: followed by ReLU, then BN: the bias matters
    nn.ReLU(),
    nn.BatchNorm2d(64),
)
layers = [nn.Conv1d(8, 16, 3), nn.BatchNorm1d(16)]  # expect: conv-bias-before-bn
named = nn.Sequential(OrderedDict([
    ("conv", nn.Conv3d(1, 8, 3)),  # expect: conv-bias-before-bn
    ("bn", nn.BatchNorm3d(8)),
]))
