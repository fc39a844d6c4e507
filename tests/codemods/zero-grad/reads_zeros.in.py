import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    opt.zero_grad(set_to_none=False)
    for p in model.parameters():
        p.grad.add_(1e-3 * p.data)  # an L2 term added into the zeroed buffers
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
