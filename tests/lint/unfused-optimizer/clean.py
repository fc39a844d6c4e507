import torch

model = torch.nn.Linear(4, 1)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
opt2 = torch.optim.AdamW(model.parameters(), foreach=True)
opt3 = torch.optim.SGD(model.parameters(), lr=0.1, fused=True)
opt.zero_grad(set_to_none=False)  # before the loop: once
for step in range(100):
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    opt2.zero_grad(set_to_none=True)
