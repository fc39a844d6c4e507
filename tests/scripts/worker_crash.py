"""Two DataLoader workers (num_workers=2); with `crash`, the Dataset's __getitem__ raises in a
worker from sample 16 on (batch 4: in the middle of the steps trainprof times)."""
import sys

import torch
from torch.utils.data import DataLoader, Dataset

crash = sys.argv[1:] == ["crash"]


class Flaky(Dataset):
    def __len__(self):
        return 10_000

    def __getitem__(self, i):
        if crash and i >= 16:
            raise ValueError(f"corrupt sample {i}")
        return torch.randn(8), torch.randn(1)


loader = DataLoader(Flaky(), batch_size=4, num_workers=2)
model = torch.nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for x, y in loader:
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()
