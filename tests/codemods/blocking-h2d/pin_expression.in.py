import argparse

import torch
from torch.utils.data import DataLoader

p = argparse.ArgumentParser()
p.add_argument("--pin", action="store_true")
args = p.parse_args()
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
loader = DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2)), batch_size=2, pin_memory=args.pin)
model = torch.nn.Linear(2, 1).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for (x,) in loader:
    loss = model(x.to(device)).sum()
    loss.backward()
    opt.step()
