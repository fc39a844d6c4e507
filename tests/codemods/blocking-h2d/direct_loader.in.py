# fixture: lines=10,11
import torch
from torch.utils.data import DataLoader

ds = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
model = torch.nn.Linear(4, 1).to("cuda:0")
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for epoch in range(2):
    for x, y in DataLoader(ds, batch_size=4):
        x = x.to("cuda:0", non_blocking=False)
        y = y.to(torch.device("cuda:0"))
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        print(loss.cpu().item())
