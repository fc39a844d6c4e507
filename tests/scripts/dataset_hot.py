"""Loader-bound: the Dataset's __getitem__ runs a Python loop per sample, in the worker. The
finding must name the loop's lines inside the Dataset, not only the `for ... in loader` line."""
import argparse

import torch
from torch.utils.data import DataLoader, Dataset


class Slow(Dataset):
    def __len__(self):
        return 100_000

    def __getitem__(self, i):
        x = torch.full((32,), float(i % 7))
        s = 0.0
        for k in range(20_000):  # HOT
            s += k * 0.5  # HOT
        return x, i % 2


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100_000)
    args = p.parse_args()
    model = torch.nn.Linear(32, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = DataLoader(Slow(), batch_size=16, num_workers=1)
    for step, (x, y) in enumerate(loader):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step + 1 >= args.steps:
            break
