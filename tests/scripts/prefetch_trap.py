"""A loader whose prefetch queue hides it at first: 2 workers, prefetch_factor 4, each batch
waits 40 ms on I/O (a sleep: it needs no core), while the step itself computes a few ms. The
first step is slow (as a compiled or autotuned one is), so the workers fill the queue (8
batches) and the steps after it look fast until it drains; from then on the step waits for
the loader: a batch every 20 ms. More workers overlap the waits: the fix is num_workers.

    python prefetch_trap.py [--steps N] [--workers W]
"""

import argparse
import time

import torch
from torch.utils.data import DataLoader, Dataset

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=100_000)
p.add_argument("--workers", type=int, default=2)
args = p.parse_args()


class Slow(Dataset):
    def __len__(self):
        return 1_000_000

    def __getitem__(self, i):
        return torch.randn(64), torch.randn(1)


def collate(items):
    time.sleep(0.04)  # reading the batch from a slow disk
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def main():
    torch.manual_seed(0)
    loader = DataLoader(Slow(), batch_size=32, num_workers=args.workers, prefetch_factor=4, collate_fn=collate)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for step, (x, y) in enumerate(loader):
        if step == 0:
            time.sleep(1.0)  # the first step: compilation, autotuning
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step + 1 >= args.steps:
            break
    print(f"loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
