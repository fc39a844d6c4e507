import torch
from torch.utils.data import DataLoader

device = "cuda"
loader = DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2)
model = torch.nn.Linear(2, 1).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for i, (x, y) in enumerate(loader):
    x = x.double().float()  # a new, pageable tensor
    x = x.to(device)
    xs = [t.to(device) for t in (x, y)]
    yd = y.to(device)
    y.mul_(2)  # an async copy could read this
    idx = torch.tensor(i).to(device)
    loss = (model(x) - yd + idx).pow(2).mean()
    loss.backward()
    opt.step()
