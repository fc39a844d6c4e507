import torch
from torch.utils.data import DataLoader

loader = DataLoader(torch.utils.data.TensorDataset(torch.randn(8, 2), torch.randn(8, 1)), batch_size=2)
model = torch.nn.Linear(2, 1).cuda().half()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in loader:
    x = x.to("cuda", torch.float16)
    y = y.to(device="cuda", dtype=torch.float16)
    x2 = x.cuda(memory_format=torch.contiguous_format)
    loss = (model(x) - y).pow(2).mean()
    loss.backward()
    opt.step()
