"""A loop that evaluates every EVAL_EVERY steps: 8 ms steps (the step's work is a sleep, so no
machine load changes it), and an evaluation of 120 ms each time: 4.8 ms a step amortised (every 25).

    python periodic_eval.py [--steps N] [--every N]
"""

import argparse
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=100_000)
p.add_argument("--every", type=int, default=25)
args = p.parse_args()
EVAL_EVERY = args.every


def evaluate(model):
    time.sleep(0.12)  # a validation pass
    with torch.no_grad():
        return model(torch.randn(8, 32)).mean().item()


def main():
    torch.manual_seed(0)
    model = torch.nn.Linear(32, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for step in range(args.steps):
        x, y = torch.randn(16, 32), torch.randn(16, 1)
        time.sleep(0.008)  # the step's own work
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % EVAL_EVERY == 0:
            evaluate(model)
    print(f"loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
