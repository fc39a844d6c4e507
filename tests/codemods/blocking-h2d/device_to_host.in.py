# fixture: lines=12,13,14
import torch
from torch.utils.data import DataLoader

device = "cuda"
loader = DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2)
model = torch.nn.Linear(2, 1).to(device)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
history = []
for x, y in loader:
    out = model(x.to(device, non_blocking=True))
    pred = out.to("cpu")  # read on the CPU right below
    history.append(pred.numpy().sum())
    y_host = y.to(torch.device("cpu"))
    loss = (out - y.to(device, non_blocking=True)).pow(2).mean()
    loss.backward()
    opt.step()
