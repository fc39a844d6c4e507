import torch
from torch import nn

torch.set_float32_matmul_precision("high")  # ok: TF32 matmuls: Tensor Cores in fp32 storage
model = nn.Linear(1024, 1024).to("cuda")
opt = torch.optim.AdamW(model.parameters())
x = torch.randn(64, 1024, device="cuda")
for step in range(100):
    loss = model(x).square().mean()  # ok: TF32, set at line 4
    opt.zero_grad()
    loss.backward()
    opt.step()
