import torch
import torchvision

model = torchvision.models.vit_b_16().cuda()  # ok: a vision transformer: its one convolution is the patch embedding
opt = torch.optim.AdamW(model.parameters(), fused=True)
for step in range(100):
    x = torch.randn(32, 3, 224, 224, device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(x).logsumexp(-1).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
