import torch
from torch.utils.data import DataLoader, TensorDataset

ds = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
n_workers = 4
loader = DataLoader(ds, batch_size=8, num_workers=4, persistent_workers=True, pin_memory=True)  # ok: workers kept across epochs (the fix)
unknown = DataLoader(ds, batch_size=8, num_workers=n_workers)  # ok: num_workers not a literal
evaluation = DataLoader(ds, batch_size=8)  # ok: never feeds a training loop
for epoch in range(3):
    for x, y in loader:
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    for x, y in unknown:
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        for x, y in evaluation:
            print((model(x) - y).abs().mean())
