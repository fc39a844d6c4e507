import torch
from torch.utils.data import DataLoader, TensorDataset


def main():
    device = "cuda"
    ds = TensorDataset(torch.randn(512, 16), torch.randint(0, 4, (512,)))
    loader = DataLoader(ds, batch_size=32, num_workers=2,
                        pin_memory=False)
    model = torch.nn.Linear(16, 4).to(device)
    opt = torch.optim.Adam(model.parameters())
    for i, (x, y) in enumerate(loader):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()


if __name__ == "__main__":
    main()
