import torch as T
from torch import nn

device = "cuda" if T.cuda.is_available() else "cpu"
dev2 = T.device("cuda" if T.cuda.is_available() else "cpu")
dev3 = "cpu" if not T.cuda.is_available() else "cuda"

a = nn.Linear(4, 4).to(device)
b = nn.Linear(4, 4).to(dev2)
c = nn.Linear(4, 4)
c = c.to(dev3)

# fused only where the device is CUDA: fused CPU kernels need torch>=2.4
opt_a = T.optim.Adam(a.parameters(), lr=1e-3, fused=T.cuda.is_available())
opt_b = T.optim.AdamW(b.parameters(), fused=T.cuda.is_available())
opt_c = T.optim.SGD(c.parameters(), lr=0.1, fused=T.device(dev3).type == "cuda")
