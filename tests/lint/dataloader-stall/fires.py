import torch  # no near-miss: every DataLoader here feeds a training loop and is misconfigured
import torch.utils.data as tud
from torch.utils.data import DataLoader, TensorDataset

ds = TensorDataset(torch.randn(64, 4), torch.randn(64, 1))
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)


def train():
    loader = tud.DataLoader(ds, batch_size=8, shuffle=True)  # expect: dataloader-stall
    for step, (x, y) in enumerate(loader):
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()


workers = DataLoader(ds, batch_size=8, num_workers=4)  # expect: dataloader-stall
for epoch in range(3):
    for x, y in workers:
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()

for x, y in DataLoader(ds, batch_size=8, num_workers=0):  # expect: dataloader-stall
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
