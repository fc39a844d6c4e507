"""CIFAR-10 with a torchvision ResNet-18, configured from the command line."""
import argparse
import time

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T


def get_args():
    p = argparse.ArgumentParser(description="CIFAR-10 ResNet")
    p.add_argument("--data", default="./data")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--print-freq", type=int, default=50)
    return p.parse_args()


def main():
    args = get_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])
    train_set = torchvision.datasets.CIFAR10(args.data, train=True, download=True, transform=tf)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                               num_workers=args.workers, drop_last=True)
    model = torchvision.models.resnet18(num_classes=10).to(device)  # expect: cudnn-benchmark
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)

    for epoch in range(args.epochs):
        model.train()
        running_loss = 0.0
        t0 = time.time()
        for i, (images, labels) in enumerate(train_loader):
            images = images.to(device, non_blocking=True)  # expect: blocking-h2d
            labels = labels.to(device, non_blocking=True)  # expect: blocking-h2d
            outputs = model(images)  # expect: fp32-compute
            loss = criterion(outputs, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running_loss += loss.item()  # expect: item-sync
            if (i + 1) % args.print_freq == 0:
                print(f"epoch {epoch} iter {i + 1} loss {running_loss / args.print_freq:.3f} "  # ok
                      f"({time.time() - t0:.1f}s)")
                running_loss = 0.0
        scheduler.step()
        torch.save(model.state_dict(), f"resnet18_epoch{epoch}.pt")  # ok: once an epoch


if __name__ == "__main__":
    main()
