"""Binary segmentation with a small U-Net; bf16 autocast is on, the rest is stock."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),  # expect: cudnn-benchmark
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.net(x)


class UNet(nn.Module):
    def __init__(self, ch=32):
        super().__init__()
        self.d1, self.d2, self.d3 = DoubleConv(3, ch), DoubleConv(ch, 2 * ch), DoubleConv(2 * ch, 4 * ch)
        self.u2, self.u1 = DoubleConv(6 * ch, 2 * ch), DoubleConv(3 * ch, ch)
        self.head = nn.Conv2d(ch, 1, 1)

    def forward(self, x):
        a = self.d1(x)
        b = self.d2(F.max_pool2d(a, 2))
        c = self.d3(F.max_pool2d(b, 2))
        b = self.u2(torch.cat([F.interpolate(c, scale_factor=2), b], 1))
        a = self.u1(torch.cat([F.interpolate(b, scale_factor=2), a], 1))
        return self.head(a)


class Tiles(Dataset):
    def __len__(self):
        return 4000

    def __getitem__(self, i):
        img = torch.rand(3, 256, 256)
        return img, (img.mean(0, keepdim=True) > 0.5).float()


def dice_score(logits, target, eps=1e-6):
    pred = (logits.sigmoid() > 0.5).float()
    inter = (pred * target).sum()
    return (2 * inter + eps) / (pred.sum() + target.sum() + eps)


def train_one_epoch(model, loader, optimizer, device, epoch):
    model.train()
    dices = []
    for step, (img, mask) in enumerate(loader):
        img = img.to(device, non_blocking=True)  # ok: pinned loader, asynchronous
        mask = mask.to(device, non_blocking=True)  # ok
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(img)
            loss = F.binary_cross_entropy_with_logits(logits, mask)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        dices.append(dice_score(logits.float(), mask).item())  # expect: item-sync
    print(f"epoch {epoch}: dice {sum(dices) / len(dices):.3f}")  # ok: once an epoch


def main():
    device = torch.device("cuda")
    model = UNet().to(device)  # expect: fp32-compute
    loader = DataLoader(Tiles(), batch_size=16, shuffle=True, num_workers=6, pin_memory=True,
                        persistent_workers=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=True)  # ok: fused
    for epoch in range(20):
        train_one_epoch(model, loader, optimizer, device, epoch)


if __name__ == "__main__":
    main()
