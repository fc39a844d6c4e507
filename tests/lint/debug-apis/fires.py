import torch  # no near-miss: every debugging switch here is on while training
import torch as T
from torch.autograd import gradcheck

T.autograd.set_detect_anomaly(True)  # expect: debug-apis
torch.use_deterministic_algorithms(True)  # expect: debug-apis
torch.cuda.set_sync_debug_mode("warn")  # expect: debug-apis

model = torch.nn.Linear(4, 1).double()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
with T.autograd.detect_anomaly():  # expect: debug-apis
    for step in range(100):
        x = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
        gradcheck(model, (x,))  # expect: debug-apis
        torch.autograd.gradgradcheck(model, (x,))  # expect: debug-apis
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
