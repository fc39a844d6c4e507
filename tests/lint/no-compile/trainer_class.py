import torch
from torch import nn


class Trainer:
    def __init__(self):
        self.loss_fn = nn.MSELoss()  # ok: a loss module, not the model
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1)).cuda()  # expect: no-compile
        self.opt = torch.optim.Adam(self.net.parameters(), fused=True)

    def fit(self):
        for step in range(100):  # ok: reported where the model is built
            x = torch.randn(8, 4, device="cuda")
            loss = self.loss_fn(self.net(x), torch.zeros(8, 1, device="cuda"))
            loss.backward()
            self.opt.step()
            self.opt.zero_grad()
