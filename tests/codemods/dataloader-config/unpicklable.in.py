import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset


class Stream(IterableDataset):
    def __iter__(self):
        while True:
            yield torch.randn(8), torch.randn(1)


def fit(model, opt, loader):
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x.cuda()), y.cuda())
        loss.backward()
        opt.step()
        opt.zero_grad()


def local_class(model, opt):
    class Squares(Dataset):  # local: spawned workers cannot unpickle it
        def __len__(self):
            return 64

        def __getitem__(self, i):
            return torch.full((8,), float(i)), torch.tensor([i * i], dtype=torch.float)

    loader = DataLoader(Squares(), batch_size=8)
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x.cuda()), y.cuda())
        loss.backward()
        opt.step()


def lambda_collate(model, opt, ds):
    loader = DataLoader(ds, batch_size=8, collate_fn=lambda b: torch.utils.data.default_collate(b))
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x.cuda()), y.cuda())
        loss.backward()
        opt.step()


def streaming(model, opt):
    loader = DataLoader(Stream(), batch_size=8)
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x.cuda()), y.cuda())
        loss.backward()
        opt.step()
        if step == 100:
            break


if __name__ == "__main__":
    m = torch.nn.Linear(8, 1).cuda()
    o = torch.optim.SGD(m.parameters(), lr=0.1)
    local_class(m, o)
