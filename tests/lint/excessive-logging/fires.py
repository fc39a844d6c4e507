import logging as lg

import torch
from torch.utils.tensorboard import SummaryWriter as SW

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
writer = SW()
log = lg.getLogger(__name__)  # ok: once, before the loop
for step in range(100):
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    print(f"step {step} loss {loss}")  # expect: excessive-logging
    writer.add_scalar("loss", loss, step)  # expect: excessive-logging
    lg.info("loss %s", loss)  # expect: excessive-logging
    for name, p in model.named_parameters():
        writer.add_scalar(f"norm/{name}", p.norm(), step)  # expect: excessive-logging
    writer.add_histogram("w", model.weight, step)  # expect: excessive-logging
