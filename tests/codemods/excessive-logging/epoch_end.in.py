import logging

import torch
from torch.utils.data import DataLoader, TensorDataset

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
loader = DataLoader(TensorDataset(torch.randn(64, 4), torch.randn(64, 1)), batch_size=8)

for epoch in range(5):
    logging.info("epoch %d", epoch)
    for i, (x, y) in enumerate(loader):
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    print(f"epoch {epoch} last loss {loss.item():.4f}")
    for name, p in model.named_parameters():
        print(name, p.norm().item())
print("trained")
