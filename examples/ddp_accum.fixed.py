"""Fixed: every rank does the same work per batch, and the micro-batches before the last
of each step run under model.no_sync(), so DDP all-reduces once per optimizer step."""
import argparse
import contextlib
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=200)
args = p.parse_args()
cuda = torch.cuda.is_available()
dist.init_process_group("nccl" if cuda else "gloo")
rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
device = torch.device("cuda", local) if cuda else torch.device("cpu")
width, depth, batch = (4096, 8, 128) if cuda else (512, 2, 64)

layers = []
for _ in range(depth):
    layers += [nn.Linear(width, width), nn.ReLU()]
model = DDP(nn.Sequential(*layers).to(device), device_ids=[local] if cuda else None)
opt = torch.optim.SGD(model.parameters(), lr=1e-3)
accum = 4

for i in range(args.steps * accum):
    x = torch.randn(batch, width, device=device)
    last = (i + 1) % accum == 0
    with contextlib.nullcontext() if last else model.no_sync():
        loss = model(x).pow(2).mean() / accum
        loss.backward()
    if last:
        opt.step()
        opt.zero_grad()
dist.destroy_process_group()
