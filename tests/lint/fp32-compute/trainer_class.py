import torch
import torchvision


class Trainer:
    def __init__(self):
        self.device = torch.device("cuda")
        self.model = torchvision.models.resnet18().to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def fit(self, batches):
        for x, y in batches:
            self.opt.zero_grad()  # ok: not the model
            out = self.model(x.to(self.device))  # expect: fp32-compute
            loss = torch.nn.functional.cross_entropy(out, y.to(self.device))
            loss.backward()
            self.opt.step()
