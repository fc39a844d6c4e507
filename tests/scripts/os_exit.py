"""Ends abruptly after 5 optimizer steps, without an exception or atexit: `exit` calls
os._exit(0); `kill` sends itself SIGKILL (as the out-of-memory killer would)."""
import os
import signal
import sys

import torch

how = sys.argv[1]
model = torch.nn.Linear(4, 4)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(30):
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    if step == 4:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(0)
