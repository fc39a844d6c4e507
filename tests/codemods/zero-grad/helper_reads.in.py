import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def grad_norm(m):
    return sum(float(p.grad.norm()) for p in m.parameters())


for step in range(10):
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=False)
    print(grad_norm(model))  # zeros here; None with set_to_none
