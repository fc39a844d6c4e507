import torch
import torch.nn as nn

vocab, dim = 50257, 768
emb = nn.Embedding(50257, 768)  # expect: matmul-dims
tok = nn.Embedding(vocab, dim)  # ok: non-literal sizes
model = nn.Sequential(
    nn.Linear(1500, 4096),  # expect: matmul-dims
    nn.GELU(),
    nn.Linear(4096, 1500),  # expect: matmul-dims
    nn.Linear(in_features=1500, out_features=1024),  # expect: matmul-dims
    nn.Linear(1024, 1024),  # ok: multiples of 8
    nn.Linear(1024, 10),  # ok: a 10-class head
).cuda()
opt = torch.optim.AdamW(model.parameters())
for step in range(10):
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(torch.randn(8, 1500, device="cuda")).sum()
    loss.backward()
    opt.step()
