import torch  # no near-miss: its one DDP call fires
from torch.nn.parallel import DistributedDataParallel as DDP

model = DDP(torch.nn.Linear(8, 8))  # expect: ddp-buckets
