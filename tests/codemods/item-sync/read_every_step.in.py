import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
history = []
for step in range(10):
    loss = model(torch.randn(2, 4)).pow(2).mean()
    history.append(loss.item())
    if history[-1] != history[-1]:  # NaN check drives control flow every step
        break
    loss.backward()
    opt.step()
