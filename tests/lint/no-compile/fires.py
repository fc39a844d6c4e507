import torch as T
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x).relu()


class Net(Block):
    pass


model = Net()
opt = T.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):  # ok: the epoch loop; the step loop is reported
    for step in range(100):  # expect: no-compile
        loss = model(T.randn(8, 4)).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
