import torch
from torch import nn

d = 1000
model = nn.Sequential(nn.Linear(1024, 4096), nn.GELU(), nn.Linear(4096, d), nn.Linear(d, 3)).cuda()  # ok: multiples of 8, a size not a literal, a 3-wide head
emb = nn.Embedding(50304, 768)  # ok: 50304 is a multiple of 8
with torch.autocast("cuda"):
    pass
