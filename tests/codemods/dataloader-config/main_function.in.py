# fixture: lines=36 workers=4
"""Per-sample work on the training thread; the loop is in main(), run under the __main__ guard."""
import torch
from torch import nn
from torch.utils.data import DataLoader as DL, Dataset


class Spectra(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return torch.fft.rfft(torch.randn(64, generator=g)).abs(), i % 10


def build(n):
    return Spectra(n)


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    val = DL(build(100), batch_size=8)
    # the training data
    loader = DL(
        build(10_000),
        batch_size=64,
        shuffle=True,  # reshuffled every epoch
    )
    model = nn.Linear(33, 10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for epoch in range(2):
        for step, (x, y) in enumerate(loader):
            x, y = x.to(device), y.to(device)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for x, y in val:
        print(model(x.to(device)).shape)


if __name__ == "__main__":
    main()
