import torch

model = torch.nn.Linear(4, 1).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
total = torch.zeros((), device="cuda")
for step in range(100):
    loss = model(torch.randn(8, 4, device="cuda")).pow(2).mean()
    total += loss.detach()  # ok: stays on the device (the fix)
    lr = float(0.1)  # ok: float() of a plain number
    loss.backward()
    opt.step()
    opt.zero_grad()
print(total.item())  # ok: after the loop: once
