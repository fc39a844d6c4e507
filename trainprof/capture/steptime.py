"""Run a training script unprofiled and time its steps, or record its first losses.

    python -m trainprof.capture.steptime SCRIPT [ARGS...]

Environment: TRAINPROF_SKIP (steps skipped first, default 10), TRAINPROF_STEPS
(steps timed, default 20), TRAINPROF_LOSSES (instead of timing: record the value
of the first N scalars passed to backward, the losses), TRAINPROF_SEED (seed
torch, numpy and random first), TRAINPROF_DETERMINISTIC (deterministic kernels). A step ends at the first optimizer's step(), as
in the capture; the device is synced at each edge of the timed window only.
Prints one JSON line ({"step_ms": ...} or {"losses": [...]}) and exits at once,
without running the rest of the training.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time


def _sync(torch) -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def _done(payload: dict) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, (json.dumps(payload) + "\n").encode())
    os._exit(0)


def main() -> None:
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    skip = int(os.environ.get("TRAINPROF_SKIP", 10))
    steps = int(os.environ.get("TRAINPROF_STEPS", 20))
    n_losses = int(os.environ.get("TRAINPROF_LOSSES", 0))
    script, args = sys.argv[1], sys.argv[2:]
    seed = os.environ.get("TRAINPROF_SEED")
    if seed is not None:
        import random

        random.seed(int(seed))
        torch.manual_seed(int(seed))
        try:
            import numpy

            numpy.random.seed(int(seed))
        except ImportError:
            pass
    if os.environ.get("TRAINPROF_DETERMINISTIC"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    state = {"n": 0, "pacer": None, "t0": 0.0}
    losses: list[str] = []

    if n_losses:
        orig = torch.Tensor.backward

        def backward(self, *a, **k):
            if self.numel() == 1 and len(losses) < n_losses:
                losses.append(repr(float(self.detach())))  # repr: every bit of the value
            out = orig(self, *a, **k)
            if len(losses) >= n_losses:
                _done({"script": script, "losses": losses})
            return out

        torch.Tensor.backward = backward

    def hook(opt, a, k):
        if state["pacer"] is None:
            state["pacer"] = opt
        if opt is not state["pacer"] or n_losses:
            return
        state["n"] += 1
        if state["n"] == skip:
            _sync(torch)
            state["t0"] = time.perf_counter()
        elif state["n"] == skip + steps:
            _sync(torch)
            _done({"script": script, "step_ms": (time.perf_counter() - state["t0"]) * 1000 / steps,
                   "skip": skip, "steps": steps})

    register_optimizer_step_post_hook(hook)
    sys.argv = [script] + args
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    what = f"{len(losses)} losses" if n_losses else f"{state['n']} optimizer steps"
    _done({"script": script, "error": f"the script ended after {what}"})


if __name__ == "__main__":
    main()
