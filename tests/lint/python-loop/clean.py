import torch

model = torch.nn.Linear(4, 3)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
crit = torch.nn.CrossEntropyLoss()
x = torch.randn(8, 4)
y = torch.randint(0, 3, (8,))
for i in range(x.shape[0]):  # ok: before the training loop: once
    print(crit(model(x[i:i + 1]), y[i:i + 1]))
names = ["a", "b"]
for step in range(100):
    out = model(x)
    loss = crit(out, y)
    labels = []
    for i in range(len(names)):  # ok: no tensor ops
        labels.append(names[i])
    for k in range(3):  # ok: not a tensor dimension
        loss = loss + out[:, k].mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
