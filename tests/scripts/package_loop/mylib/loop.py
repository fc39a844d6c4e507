import json
import os
import tempfile

import torch
from torch import nn


def fit(model, opt, steps):
    x, y = torch.randn(64, 32), torch.randn(64, 1)
    out = os.path.join(tempfile.mkdtemp(), "record.json")
    for step in range(steps):
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        record = {"step": step, "weights": model[0].weight.detach().flatten().tolist() * 20}
        with open(out, "w") as f:
            json.dump(record, f)  # DUMP
