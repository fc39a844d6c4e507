import sys

import torch
from torch.nn.parallel import DistributedDataParallel

unused = "--unused" in sys.argv
model = DistributedDataParallel(torch.nn.Linear(8, 8), find_unused_parameters=unused)  # ok: not a literal
