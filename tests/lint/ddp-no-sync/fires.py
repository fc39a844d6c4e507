import torch  # no near-miss: its one backward fires
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("gloo")
model = DDP(torch.nn.Linear(8, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
sched = torch.optim.lr_scheduler.StepLR(opt, 10)
ACCUM = 4
for i in range(40):
    loss = model(torch.randn(16, 8)).pow(2).mean() / ACCUM
    loss.backward()  # expect: ddp-no-sync
    if (i + 1) % ACCUM == 0:
        opt.step()
        opt.zero_grad()
    sched.step()
