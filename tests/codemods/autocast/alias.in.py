import torch as T
from torch import nn

device = T.device("cuda")
model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
crit = nn.CrossEntropyLoss()
opt = T.optim.SGD(model.parameters(), lr=0.1)
history = []
for epoch in range(2):
    for step in range(50):
        x = T.randn(16, 32).to(device, non_blocking=True)
        y = T.randint(0, 10, (16,)).to(device)
        # forward
        logits = model(x)  # the matmuls
        loss = crit(logits,
                    y)
        history.append(loss.detach())  # not part of the loss: stays outside
        opt.zero_grad()
        loss.backward()
        opt.step()
