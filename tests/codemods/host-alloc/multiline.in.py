# fixture: lines=12,13,17
import torch
from torch import tensor, zeros as Z


def train(model, opt, batch, seq):
    dev = torch.device("cuda")
    for step in range(100):
        weights = tensor(
            [0.1, 0.2, 0.3, 0.4],  # class weights
            dtype=torch.float32,
        ).to(dev)
        scale = torch.full((batch, seq, 1),
                           0.5).to(dev)
        state = (
            Z(batch, 4)
            .to(dev)
        )
        untouched = torch.ones(4).to(dev)  # not at a finding's line
        out = model(state) * weights * scale
        out.sum().backward()
        opt.step()
