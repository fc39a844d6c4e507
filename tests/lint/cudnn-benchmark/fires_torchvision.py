import torch
import torchvision.models as models

arch = "resnet18"
names = sorted(n for n in models.__dict__ if n.islower())  # ok: a lookup, not a model
model = models.__dict__[arch]().cuda()  # expect: cudnn-benchmark
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    loss = model(torch.randn(8, 3, 224, 224, device="cuda")).sum()
    loss.backward()
    opt.step()
