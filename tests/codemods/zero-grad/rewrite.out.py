import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    opt.zero_grad()  # zero the buffers
    model.zero_grad()
    loss = model(torch.randn(2, 4)).pow(2).mean()
    loss.backward()
    opt.step()

for step in range(10):
    loss = model(torch.randn(2, 4)).pow(2).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # after the backward: fresh grads
    opt.step()
    opt.zero_grad()
    opt.zero_grad()
    opt.zero_grad(set_to_none=True)  # the default already
