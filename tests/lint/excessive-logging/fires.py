import logging as lg

import torch
from torch.utils.tensorboard import SummaryWriter as SW

model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
writer = SW()
log = lg.getLogger(__name__)
for step in range(100):
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    print(f"step {step} loss {loss}")  # expect
    writer.add_scalar("loss", loss, step)  # expect
    lg.info("loss %s", loss)  # expect
    for name, p in model.named_parameters():
        writer.add_scalar(f"norm/{name}", p.norm(), step)  # expect
    writer.add_histogram("w", model.weight, step)  # expect
