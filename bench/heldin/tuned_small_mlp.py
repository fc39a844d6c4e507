"""A small MLP done right: compiled, fused AdamW, data generated on the device, syncs every 500 steps."""
import torch
from torch import nn

device = "cuda" if torch.cuda.is_available() else "cpu"
torch.set_float32_matmul_precision("high")  # ok: TF32 matmuls
model = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, 10)).to(device)
model = torch.compile(model, mode="reduce-overhead")  # ok
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device == "cuda")  # ok
class_weights = torch.tensor([1.0] * 5 + [2.0] * 5, device=device)  # ok: once, on the device
W = torch.randn(64, 10, device=device)
acc_sum = torch.zeros((), device=device)
for step in range(20_000):
    x = torch.randn(512, 64, device=device)  # ok
    y = (x @ W).argmax(1)
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y, weight=class_weights)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    acc_sum += (logits.argmax(1) == y).float().mean()  # ok: stays on the device
    if (step + 1) % 500 == 0:
        print(f"step {step + 1} loss {loss.item():.4f} acc {acc_sum.item() / 500:.3f}")  # ok
        acc_sum.zero_()
