import torch as T

model = T.compile(T.nn.Linear(4, 1))
opt = T.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):
    loss = model(T.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
