"""Slow: DDP with gradient accumulation that all-reduces every micro-batch (no model.no_sync()),
and a straggler: rank 1 spends longer on each batch than the others (injected here by a sleep,
standing for a slower data path on one host), so every other rank waits for it.

    trainprof analyze --nproc-per-node 2 examples/ddp_accum.py
"""
import argparse
import os
import time

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=200)
p.add_argument("--straggle-ms", type=float, default=4.0)
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
    if rank == 1:
        time.sleep(args.straggle_ms / 1000)
    loss = model(x).pow(2).mean() / accum
    loss.backward()
    if (i + 1) % accum == 0:
        opt.step()
        opt.zero_grad()
dist.destroy_process_group()
