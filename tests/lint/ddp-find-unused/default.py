import torch
import torch.nn.parallel

model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(8, 8), find_unused_parameters=False)  # ok: find_unused_parameters=False
