import torch
import torch.nn.functional as F


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 64, 3)

    def forward(self, x):
        return self.conv(x).mean()


device = torch.device("cuda")
model = Net().to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x in [torch.randn(8, 3, 32, 32, device=device)] * 10:
    opt.zero_grad()  # ok: a method call, not the model's
    loss = F.relu(model(x))  # expect: fp32-compute
    loss.backward()
    opt.step()
