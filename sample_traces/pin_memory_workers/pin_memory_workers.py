"""Slow: two workers cannot keep up with an expensive __getitem__; batches are pageable and copied blocking."""
import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Signals(Dataset):
    """Each sample is synthesized on the fly: a noisy signal, low-passed through an FFT, windowed energies."""

    def __init__(self, n, length):
        self.n, self.length = n, length

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        sig = torch.randn(8, self.length, generator=g)
        spec = torch.fft.rfft(sig)
        spec[:, self.length // 8:] = 0
        sig = torch.fft.irfft(spec, n=self.length)
        for _ in range(4):
            sig = (sig + sig.roll(1, -1) + sig.roll(-1, -1)) / 3
        return sig.unfold(-1, 64, 32).pow(2).mean(-1).flatten(), i % 10


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    length, batch = (8192, 64) if device == "cuda" else (2048, 16)
    feats = 8 * (length // 32 - 1)
    loader = DataLoader(Signals(100_000, length), batch_size=batch, shuffle=True, num_workers=2,
                        pin_memory=False)
    model = nn.Sequential(nn.Linear(feats, 256), nn.ReLU(), nn.Linear(256, 10)).to(device)
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
