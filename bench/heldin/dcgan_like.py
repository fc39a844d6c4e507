"""A DCGAN-style GAN on 64x64 images; both nets defined inline, moved with .cuda()."""
import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

torch.backends.cudnn.benchmark = True
nz, ngf, ndf = 100, 64, 64


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z):
        return self.main(z)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, 1, 8, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1)


netG, netD = Generator().cuda(), Discriminator().cuda()
criterion = nn.BCELoss()
optD = optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))  # expect: unfused-optimizer
optG = optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))  # expect: unfused-optimizer
data = TensorDataset(torch.rand(10_000, 3, 64, 64) * 2 - 1)
loader = DataLoader(data, batch_size=128, shuffle=True, num_workers=4, pin_memory=True, drop_last=True)

for epoch in range(25):
    for i, (real,) in enumerate(loader):
        real = real.cuda(non_blocking=True)  # ok: pinned and asynchronous
        b = real.size(0)
        netD.zero_grad()
        label = torch.full((b,), 1.0).cuda()  # expect: host-alloc
        out = netD(real)  # expect: fp32-compute
        errD_real = criterion(out, label)
        errD_real.backward()
        noise = torch.randn(b, nz, 1, 1).cuda()  # expect: host-alloc
        fake = netG(noise)
        label.fill_(0.0)
        errD_fake = criterion(netD(fake.detach()), label)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        errG = criterion(netD(fake), label)
        errG.backward()
        optG.step()
        if i % 100 == 0:
            print(f"[{epoch}/25][{i}/{len(loader)}] D {(errD_real + errD_fake).item():.3f} G {errG.item():.3f}")  # ok
