import torch
from torch import nn

enc, dec = nn.Linear(64, 512).cuda(), nn.Linear(512, 32000).cuda()
teacher = nn.Linear(64, 512).cuda().half()
opt = torch.optim.AdamW([*enc.parameters(), *dec.parameters()], fused=True)
for step in range(100):
    x = torch.randn(32, 64, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        h = enc(x)  # ok: under autocast
    out = dec(h.float())  # expect: fp32-compute
    soft = teacher(x.half())  # ok: the model itself is fp16
    with torch.no_grad():
        ref = enc(x)  # ok: under no_grad (another with): left alone
    loss = out.logsumexp(-1).mean() + (h.float() - ref).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    if step % 100 == 0:
        print(dec(h.float()).mean().item())  # ok: every 100 steps, not every step
