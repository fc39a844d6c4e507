import torch
from torch.utils.data import DataLoader, TensorDataset


class Trainer:
    def __init__(self, model, dataset):
        self.model, self.dataset = model, dataset
        self.device = "cuda"

    def run(self):
        loader = DataLoader(self.dataset, batch_size=8, pin_memory=True, num_workers=2)
        opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        it = iter(loader)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                batch = next(it)
            batch = [t.to(self.device) for t in batch]  # expect: blocking-h2d
            x, y = batch
            loss = (self.model(x) - y).pow(2).mean()
            loss.backward()
            opt.step()
            opt.zero_grad()

    def run_async(self):
        loader = DataLoader(self.dataset, batch_size=8, pin_memory=True)
        opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        it = iter(loader)
        while True:
            x, y = next(it)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)  # ok: pinned, async
            loss = (self.model(x) - y).pow(2).mean()
            loss.backward()
            opt.step()


Trainer(torch.nn.Linear(4, 1).cuda(), TensorDataset(torch.randn(64, 4), torch.randn(64, 1))).run()
