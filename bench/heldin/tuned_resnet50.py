"""A tuned ImageNet-style ResNet-50 loop: nothing here should be flagged above info."""
import argparse

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--log-every", type=int, default=100)
    args = p.parse_args()
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True  # ok: fixed 224x224 crops
    ds = torchvision.datasets.FakeData(100_000, (3, 224, 224), 1000, transform=torchvision.transforms.ToTensor())
    loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=12, pin_memory=True,
                        persistent_workers=True, prefetch_factor=4, drop_last=True)
    model = torchvision.models.resnet50().to(device, memory_format=torch.channels_last)  # ok
    model = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4, fused=True)  # ok
    loss_sum = torch.zeros((), device=device)
    step = 0
    for epoch in range(90):
        for images, target in loader:
            images = images.to(device, non_blocking=True, memory_format=torch.channels_last)  # ok
            target = target.to(device, non_blocking=True)  # ok
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(images), target)  # ok
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            step += 1
            if step % args.log_every == 0:
                print(f"epoch {epoch} step {step} loss {(loss_sum / args.log_every).item():.4f}")  # ok
                loss_sum.zero_()


if __name__ == "__main__":
    main()
