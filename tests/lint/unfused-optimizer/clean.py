import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # ok: foreach by default
opt2 = torch.optim.AdamW(model.parameters(), foreach=True)  # ok: foreach=True
opt3 = torch.optim.SGD(model.parameters(), lr=0.1, fused=True)  # ok: fused=True
opt.zero_grad(set_to_none=False)  # ok: before the loop: once
for step in range(100):
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()  # ok: drops the gradients
    opt2.zero_grad(set_to_none=True)  # ok: set_to_none=True
