import torch as T

model = T.compile(T.nn.Linear(4, 1))  # ok: compiled (the fix)
opt = T.optim.SGD(model.parameters(), lr=0.1)
for step in range(100):  # ok: the model is compiled
    loss = model(T.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
