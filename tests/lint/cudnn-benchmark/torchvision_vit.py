import torch
import torchvision

model = torchvision.models.swin_t().cuda()  # ok: a vision transformer: one convolution, the patch embedding
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    loss = model(torch.randn(16, 3, 224, 224, device="cuda")).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
