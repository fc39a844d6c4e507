import torch as T
from torch import nn

model = nn.Linear(4, 4).cuda()
opt = T.optim.SGD(model.parameters(), lr=0.1)
amp = T.amp.autocast("cuda", dtype=T.bfloat16)  # made once, entered in the loop
for step in range(10):
    with amp:
        loss = model(T.randn(2, 4, device="cuda")).sum()
    loss.backward()
    opt.step()
    opt.zero_grad()
