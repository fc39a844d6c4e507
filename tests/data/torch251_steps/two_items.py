import torch

model = torch.nn.Linear(16, 16)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(40):
    loss = model(torch.randn(4, 16)).pow(2).mean()
    a = loss.item()
    b = (loss * 2).item()
    loss.backward()
    opt.step()
    opt.zero_grad()
