import torch
from torch.utils.data import DataLoader, TensorDataset


def make_loader(ds, pin):
    return DataLoader(ds, batch_size=8, num_workers=2, pin_memory=pin)


class Trainer:
    def __init__(self, model, ds):
        self.model = model.cuda()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.loader = DataLoader(ds, batch_size=8, num_workers=2)
        self.pinned = make_loader(ds, True)

    def fit(self):
        for x, y in self.loader:
            x = x.cuda(non_blocking=True)  # expect: blocking-h2d
            y = y.cuda(non_blocking=True)  # expect: blocking-h2d
            self.step(x, y)
        for x, y in self.pinned:
            x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)  # ok: pinned by make_loader, async
            self.step(x, y)

    def step(self, x, y):
        loss = (self.model(x) - y).pow(2).mean()
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()


Trainer(torch.nn.Linear(4, 1), TensorDataset(torch.randn(64, 4), torch.randn(64, 1))).fit()
