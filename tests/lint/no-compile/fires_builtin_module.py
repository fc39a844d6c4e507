import torch

model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))  # expect: no-compile
opt = torch.optim.AdamW(model.parameters())  # ok: the optimizer, not the model
step = 0
while step < 100:  # ok: reported at the model
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    step += 1
