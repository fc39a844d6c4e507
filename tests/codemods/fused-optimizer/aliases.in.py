import torch
import torch.optim as optim
from torch import nn
from torch.optim import AdamW, SGD

model = nn.Linear(8, 8).to("cuda")  # moved when built
head = nn.Linear(8, 2)
head.cuda()
enc = nn.Sequential(nn.Linear(8, 8), nn.ReLU()).to(device="cuda:0").train()

opt = optim.AdamW(model.parameters(), lr=1e-3)
opt_head = AdamW(
    head.parameters(),
    lr=3e-4,
    weight_decay=0.01,  # decoupled
)
opt_enc = SGD(enc.named_parameters(), lr=0.1,
              momentum=0.9)

for step in range(10):
    x = torch.randn(4, 8, device="cuda")
    loss = head(enc(model(x))).sum()
    loss.backward()
    for o in (opt, opt_head, opt_enc):
        o.step()
        o.zero_grad()
