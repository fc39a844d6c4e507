# fixture: lines=20,21,22,25,27 every=10
import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x, y = torch.randn(8, 4), torch.randn(8, 1)
history = []


class Meter:
    def update(self, v):
        self.last = v


meter = Meter()
for step in range(100):
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    meter.update(loss.item()); print(meter.last)
    print(f"loss {loss.item()}", history.append(loss.item()))
    shown = print(loss)
    for name, p in model.named_parameters():
        p.grad.zero_()
        print(name, p.grad.norm())
    for name, p in model.named_parameters():
        print(name, p.norm())
    last_param = name
