"""Tuned: what the other examples' fixes add up to. Workers load whole batches (one indexing op
per batch, not one per sample) and pin them, copies are asynchronous, the forward runs under bf16
autocast, the optimizer is fused, the loss stays on the device and is read every 100 steps; on
CUDA the model is compiled and large enough to keep the GPU busy. trainprof should find nothing
here above info."""
import argparse

import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=60)
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = True
    width, depth, batch = (4096, 8, 2048) if device == "cuda" else (1024, 1, 256)
    data = TensorDataset(torch.randn(16384, 512), torch.randint(0, 16, (16384,)))
    # batch_size=None + a BatchSampler: each worker indexes the dataset once per batch
    loader = DataLoader(data, batch_size=None, sampler=BatchSampler(RandomSampler(data), batch, drop_last=True),
                        num_workers=4, pin_memory=device == "cuda", persistent_workers=True)
    layers = [nn.Linear(512, width), nn.GELU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.GELU()]
    model = nn.Sequential(*layers, nn.Linear(width, 16)).to(device)
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
