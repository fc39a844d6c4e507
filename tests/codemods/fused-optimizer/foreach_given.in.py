import torch
from torch import nn

model = nn.Linear(4, 4).cuda()
a = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)  # an explicit choice: not overridden
b = torch.optim.AdamW(model.parameters(), foreach=True)
c = torch.optim.SGD(model.parameters(), lr=0.1, differentiable=True)
d = torch.optim.Adam(model.parameters(), fused=True)  # already fused
e = torch.optim.Adam(model.parameters(), fused=False)
