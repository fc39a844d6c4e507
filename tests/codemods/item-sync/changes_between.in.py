import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
total = 0
for step in range(10):
    loss = model(torch.randn(2, 4)).pow(2).mean()
    before = loss.item()
    loss.div_(2)
    after = loss.item()
    total = total + loss.item()  # not `+=`: left alone
    print(total)
