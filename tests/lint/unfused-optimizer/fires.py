import torch  # no near-miss: every optimizer and zero_grad() here is the slow form
import torch.optim as optim
from torch.optim import AdamW as A

model = torch.nn.Linear(4, 1)
opt = optim.Adam(model.parameters(), lr=1e-3, foreach=False)  # expect: unfused-optimizer
opt2 = A(model.parameters(), foreach=False)  # expect: unfused-optimizer
for step in range(100):
    loss = model(torch.randn(8, 4)).pow(2).mean()
    loss.backward()
    opt.step()
    opt2.step()
    opt.zero_grad(set_to_none=False)  # expect: unfused-optimizer
    opt2.zero_grad(False)  # expect: unfused-optimizer
