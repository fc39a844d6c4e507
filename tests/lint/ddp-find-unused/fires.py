import torch  # no near-miss: its one DDP call fires
from torch.nn.parallel import DistributedDataParallel as DDP

model = DDP(torch.nn.Linear(8, 8), find_unused_parameters=True)  # expect: ddp-find-unused
