import torch
from torch.nn.parallel import DistributedDataParallel as DDP

model = DDP(torch.nn.Linear(8, 8).cuda(), device_ids=[0])  # ok: DistributedDataParallel (the fix)
