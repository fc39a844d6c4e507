import torch
from torch.utils.data import DataLoader

device = "cuda"
loader = DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2,
                    pin_memory=True)
model = torch.nn.Linear(2, 1).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    x, y = x.to(device, non_blocking=True), y.cuda(non_blocking=True)
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
