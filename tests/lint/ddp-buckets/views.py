import os

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

model = DDP(torch.nn.Linear(8, 8), gradient_as_bucket_view=True, bucket_cap_mb=50)  # ok: bucket views, 50 MB buckets
other = DDP(torch.nn.Linear(8, 8), gradient_as_bucket_view=os.environ.get("VIEW") == "1")  # ok: not a literal
