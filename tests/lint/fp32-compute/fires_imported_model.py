import torch
import torchvision
from mynets import Net  # a model of the project: its layers are not in this file

device = "cuda"
net = Net(width=256).to(device)
backbone = torchvision.models.resnet18().to(device)
opt = torch.optim.AdamW(list(net.parameters()) + list(backbone.parameters()), lr=1e-3)
for step in range(100):
    x = torch.randn(16, 3, 224, 224, device=device)
    feats = backbone(x)  # expect: fp32-compute
    loss = net(feats).square().mean()  # ok: reported once, at the first forward of the step
    opt.zero_grad()
    loss.backward()
    opt.step()
