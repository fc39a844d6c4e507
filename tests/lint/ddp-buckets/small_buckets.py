import torch  # no near-miss: its one DDP call fires
from torch.nn.parallel import DistributedDataParallel as DDP

model = DDP(  # expect: ddp-buckets
    torch.nn.Linear(8, 8),
    gradient_as_bucket_view=True,
    bucket_cap_mb=1,
)
