# fixture: lines=16
import torch
from torch import nn

device = "cuda" if torch.cuda.is_available() else "cpu"
model = nn.Linear(64, 64)
model.to(device)
opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
x = torch.randn(8, 64, device=device)
target = torch.randn(8, 64, device=device)

for step in range(100):
    opt.zero_grad()
    out = model(x)
    out = torch.tanh(out)
    loss = nn.functional.mse_loss(out, target)  # the finding's line: wrapped from the model call
    loss.backward()
    opt.step()
