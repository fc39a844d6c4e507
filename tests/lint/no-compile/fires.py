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


model = Net()  # expect: no-compile
opt = T.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(3):  # ok: reported where the model is built, not at a loop
    for step in range(100):  # ok: the model's line, not the loop's
        loss = model(T.randn(8, 4)).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
