"""Slow: per-sample preprocessing runs on the training thread (num_workers=0)."""
import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Spectra(Dataset):
    """Each sample is computed on the fly: a signal, its FFT and some smoothing."""

    def __init__(self, n, length):
        self.n, self.length = n, length

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        sig = torch.randn(8, self.length, generator=g)
        spec = torch.fft.rfft(sig).abs()[:, :256]
        for _ in range(4):
            spec = (spec + spec.roll(1, -1) + spec.roll(-1, -1)) / 3
        return spec.flatten(), i % 10


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loader = DataLoader(Spectra(100_000, 4096), batch_size=64, shuffle=True)
    model = nn.Sequential(nn.Linear(8 * 256, 1024), nn.ReLU(), nn.Linear(1024, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for step, (x, y) in enumerate(loader):
        x, y = x.to(device), y.to(device)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step + 1 >= args.steps:
            break


if __name__ == "__main__":
    main()
