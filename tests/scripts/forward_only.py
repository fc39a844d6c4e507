"""Inference only: forward passes, no backward, no optimizer; finishes on its own."""
import torch

model = torch.nn.Linear(8, 8)
with torch.no_grad():
    for step in range(50):
        model(torch.randn(4, 8)).sum()
