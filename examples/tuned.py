"""Tuned: what the other examples' fixes add up to. Workers load and pin batches, copies are
asynchronous, the forward runs under bf16 autocast, the optimizer is fused, the loss stays on
the device and is read every 100 steps; on CUDA the model is compiled. trainprof should find
nothing here above info."""
import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    data = TensorDataset(torch.randn(8192, 512), torch.randint(0, 10, (8192,)))
    loader = DataLoader(data, batch_size=256, shuffle=True, drop_last=True, num_workers=2,
                        pin_memory=device == "cuda", persistent_workers=True)
    model = nn.Sequential(nn.Linear(512, 1024), nn.GELU(), nn.Linear(1024, 10)).to(device)
    if device == "cuda":
        model = torch.compile(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device == "cuda")
    running = torch.zeros((), device=device)
    step = 0
    while step < args.steps:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device_type=device, dtype=torch.bfloat16):
                loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.detach()
            step += 1
            if step % 100 == 0:
                print(f"step {step} loss {running.item() / 100:.4f}")
                running.zero_()
            if step >= args.steps:
                break


if __name__ == "__main__":
    main()
