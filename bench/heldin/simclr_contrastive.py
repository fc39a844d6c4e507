"""SimCLR pre-training with a torchvision ResNet-18 backbone."""
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset


class TwoViews(Dataset):
    def __len__(self):
        return 50_000

    def __getitem__(self, i):
        x = torch.rand(3, 96, 96)
        return x, x.flip(-1)


def nt_xent(z1, z2, labels, tau=0.2):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.t() / tau
    sim.fill_diagonal_(float("-inf"))
    return F.cross_entropy(sim, labels), sim


def main():
    device = torch.device("cuda:0")
    backbone = torchvision.models.resnet18()  # expect: cudnn-benchmark
    backbone.fc = nn.Identity()
    model = nn.Sequential(backbone, nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9, fused=True)
    loader = DataLoader(TwoViews(), batch_size=256, shuffle=True, num_workers=8, pin_memory=True, drop_last=True)
    for epoch in range(100):
        top1_hist = []
        for v1, v2 in loader:
            v1, v2 = v1.to(device, non_blocking=True), v2.to(device, non_blocking=True)  # ok: pinned
            b = v1.shape[0]
            labels = torch.cat([torch.arange(b) + b, torch.arange(b)]).to(device)  # expect: host-alloc
            z1, z2 = model(v1), model(v2)  # expect: fp32-compute
            loss, sim = nt_xent(z1, z2, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            pred = sim.detach().cpu().argmax(1)  # expect: item-sync
            top1_hist.append((pred == labels.cpu()).float().mean())  # expect: item-sync
        print(epoch, torch.stack(top1_hist).mean().item())  # ok: once an epoch


if __name__ == "__main__":
    main()
