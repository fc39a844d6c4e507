import tempfile

import torch as T
from torch import nn
from torch.utils.tensorboard import SummaryWriter

model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
opt = T.optim.AdamW(model.parameters(), lr=1e-3)
writer = SummaryWriter(tempfile.mkdtemp())
x, y = T.randn(16, 8), T.randint(0, 2, (16,))

for step in range(1000):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()

    # weights and gradients, for TensorBoard's histogram tab
    for name, p_ in model.named_parameters():
        writer.add_histogram(f"param/{name}", p_, step)
        writer.add_histogram(f"grad/{name}", p_.grad, step)  # the costly one
writer.close()
