"""ViT-B/16 fine-tuning inside a Trainer class, with gradient accumulation."""
import math

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader


class Trainer:
    def __init__(self, dataset, epochs=10, batch_size=32, accum_steps=4, lr=1e-4, log_every=20):
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = torchvision.models.vit_b_16(num_classes=100).to(self.device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, fused=True)  # ok: fused
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=8,
                                 pin_memory=True, drop_last=True)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
        self.epochs, self.accum_steps, self.log_every = epochs, accum_steps, log_every
        total = epochs * len(self.loader) // accum_steps
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))

    def train(self):
        self.model.train()
        global_step = 0
        for epoch in range(self.epochs):
            window = []
            for i, (x, y) in enumerate(self.loader):
                x = x.to(self.device, non_blocking=True)  # ok: pinned
                y = y.to(self.device, non_blocking=True)  # ok
                logits = self.model(x)  # expect: fp32-compute
                loss = self.criterion(logits, y) / self.accum_steps
                loss.backward()
                window.append(loss.item() * self.accum_steps)  # expect: item-sync
                if (i + 1) % self.accum_steps == 0:
                    nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
                    self.optimizer.step()
                    self.optimizer.zero_grad(set_to_none=True)
                    self.sched.step()
                    global_step += 1
                    if global_step % self.log_every == 0:
                        print(f"step {global_step} loss {sum(window) / len(window):.4f}")  # ok
                        window.clear()


if __name__ == "__main__":
    ds = torchvision.datasets.FakeData(20_000, (3, 224, 224), 100, transform=torchvision.transforms.ToTensor())
    Trainer(ds).train()
