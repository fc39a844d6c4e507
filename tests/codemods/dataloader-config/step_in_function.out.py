# fixture: lines=22 workers=6
import torch
from torch.utils.data import DataLoader, TensorDataset


def train_step(model, opt, batch, device):
    x, y = (t.to(device) for t in batch)
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()


def main(device):
    ds = TensorDataset(torch.randn(256, 8), torch.randn(256, 1))
    loader = DataLoader(
        ds, batch_size=16,
        shuffle=True,  # a comment that stays here
        drop_last=True, num_workers=6, persistent_workers=True)
    model = torch.nn.Linear(8, 1).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for batch in loader:  # the step runs in train_step: the device is not known here
        train_step(model, opt, batch, device)


if __name__ == "__main__":
    main("cuda" if torch.cuda.is_available() else "cpu")
