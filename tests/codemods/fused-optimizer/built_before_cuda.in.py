import torch
from torch import nn

model = nn.Linear(4, 4)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)  # params still on the CPU here
model.cuda()

plain = nn.Linear(4, 4)  # never moved: CPU params
opt_plain = torch.optim.SGD(plain.parameters(), lr=0.1)
cpu = nn.Linear(4, 4).to("cpu")
opt_cpu = torch.optim.AdamW(cpu.parameters())
