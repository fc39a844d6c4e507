"""Domain adaptation: source and target batches drawn together with enumerate(zip(...))."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))  # expect: cudnn-benchmark, conv-bias-before-bn


class FeatureNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv_block(3, 64), conv_block(64, 128), conv_block(128, 256))
        self.cls = nn.Linear(256 * 4 * 4, 10)

    def forward(self, x):
        f = self.features(x).flatten(1)
        return f, self.cls(f)


def main():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    src = TensorDataset(torch.randn(60_000, 3, 32, 32), torch.randint(0, 10, (60_000,)))
    tgt = TensorDataset(torch.randn(60_000, 3, 32, 32))
    src_loader = DataLoader(src, batch_size=256, shuffle=True, num_workers=4, drop_last=True)
    tgt_loader = DataLoader(tgt, batch_size=256, shuffle=True, num_workers=4, drop_last=True)
    net = FeatureNet().to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    for epoch in range(50):
        net.train()
        for it, ((xs, ys), (xt,)) in enumerate(zip(src_loader, tgt_loader)):
            xs, ys = xs.to(device, non_blocking=True), ys.to(device, non_blocking=True)  # expect: blocking-h2d
            xt = xt.to(device, non_blocking=True)  # expect: blocking-h2d
            fs, logit_s = net(xs)  # expect: fp32-compute
            ft, _ = net(xt)
            mmd = (fs.mean(0) - ft.mean(0)).pow(2).sum()
            loss = F.cross_entropy(logit_s, ys) + 0.1 * mmd
            opt.zero_grad()
            loss.backward()
            opt.step()
            if it % 100 == 0:
                print(f"epoch {epoch} it {it} loss {loss.item():.4f} mmd {mmd.item():.4f}")  # ok


if __name__ == "__main__":
    main()
