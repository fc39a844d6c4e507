import torch
from torch import nn
from mymodels import Net  # a model class of the project, not seen from here

criterion = nn.CrossEntropyLoss()  # ok: a loss, not the model
device = torch.device("cuda")
model = Net(width=64).to(device)  # expect: no-compile
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in [(torch.randn(8, 4), torch.randint(0, 2, (8,)))] * 10:  # ok: reported where the model is built
    loss = criterion(model(x.to(device)), y.to(device))
    opt.zero_grad()
    loss.backward()
    opt.step()
