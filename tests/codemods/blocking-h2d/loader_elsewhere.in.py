import torch
from mydata import make_loader

device = "cuda" if torch.cuda.is_available() else "cpu"


def train(model, opt, loader):  # built by the caller
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        loss = (model(x) - y).pow(2).mean()
        loss.backward()
        opt.step()


def main():
    model = torch.nn.Linear(2, 1).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    train(model, opt, make_loader())
    loader = make_loader()  # another module's loader: may not pin
    for x, y in loader:
        loss = (model(x.to(device)) - y.to(device)).pow(2).mean()
        loss.backward()
        opt.step()
