import torch
import torch.nn as nn

model = nn.Sequential(
    nn.Conv2d(3, 64, 7, 2, 3, bias=False),  # expect: cudnn-benchmark
    nn.BatchNorm2d(64),
    nn.ReLU(),
    nn.Conv2d(64, 64, 3, padding=1),  # ok: only the first conv is reported
).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in torch.randn(10, 8, 3, 32, 32):
    model(x.cuda()).sum().backward()
    opt.step()
