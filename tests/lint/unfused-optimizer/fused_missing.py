import torch
from torch import nn

def make_groups(m):
    return [{"params": list(m.parameters()), "weight_decay": 0.1}]


device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)).to(device)
head = nn.Linear(10, 2)
head.cuda()
cpu_model = nn.Linear(4, 4)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # expect: unfused-optimizer
opt2 = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()))  # expect: unfused-optimizer
opt3 = torch.optim.SGD(params=model.parameters(), lr=0.1, momentum=0.9)  # expect: unfused-optimizer
fused = torch.optim.AdamW(model.parameters(), fused=True)  # ok: fused already
chosen = torch.optim.Adam(model.parameters(), foreach=True)  # ok: an explicit choice
on_cpu = torch.optim.Adam(cpu_model.parameters())  # ok: never moved to a GPU
other = torch.optim.RMSprop(model.parameters())  # ok: no fused kernel to ask for
groups = torch.optim.AdamW(make_groups(model))  # ok: params from a function: cannot tell where they live
kw = torch.optim.Adam(model.parameters(), **{"lr": 1e-3})  # ok: **kwargs may set fused
late = nn.Linear(4, 4)
late_opt = torch.optim.Adam(late.parameters())  # ok: moved only after the optimizer is built
late.cuda()
for step in range(100):
    loss = model(torch.randn(8, 64, device=device)).sum()
    loss.backward()
    for o in (opt, opt2, opt3):
        o.step()
