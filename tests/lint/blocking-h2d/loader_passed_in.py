import torch
from torch.utils.data import DataLoader, TensorDataset


def train(model, device, train_loader, optimizer):
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)  # expect: blocking-h2d
        loss = torch.nn.functional.cross_entropy(model(data), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def evaluate(model, device, loader):
    for data, target in loader:
        print(model(data.to(device)).sum())  # ok: not a training loop


def main():
    device = torch.device("cuda")
    ds = TensorDataset(torch.randn(64, 4), torch.randint(0, 2, (64,)))
    kwargs = {"num_workers": 1, "pin_memory": True}
    train_loader = DataLoader(ds, batch_size=8, **kwargs)  # ok: pinned, maybe: **kwargs is not read
    model = torch.nn.Linear(4, 2).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in range(3):
        train(model, device, train_loader, optimizer)
        evaluate(model, device, train_loader)


main()
