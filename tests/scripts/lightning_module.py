"""A LightningModule trained by Trainer.fit (the loop is Lightning's): per-sample Python work in
the Dataset on the training thread (num_workers=0, from train_dataloader), a .item() every step in
a helper the training_step calls, self.log every step (Lightning paces its writes)."""
import argparse

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=100000)
args = p.parse_args()


class Slow(Dataset):
    def __len__(self):
        return 1_000_000

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        x = torch.zeros(64)
        for k in range(64):
            x[k] = torch.rand((), generator=g)
        return x, int(i % 10)


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def forward(self, x):
        return self.net(x)

    def _shared(self, batch):
        x, y = batch
        out = self(x)
        self.acc = (out.argmax(1) == y).float().mean().item()
        return nn.functional.cross_entropy(out, y)

    def training_step(self, batch, batch_idx):
        loss = self._shared(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        return self._shared(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        return DataLoader(Slow(), batch_size=32)

    def val_dataloader(self):
        return DataLoader(Slow(), batch_size=256)


if __name__ == "__main__":
    trainer = L.Trainer(max_steps=args.steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, accelerator="cpu")
    trainer.fit(Net())
