"""Run a training script unprofiled and time its steps, or record its first losses.

    python -m trainprof.capture.steptime SCRIPT [ARGS...]

Environment: TRAINPROF_SKIP (steps skipped first, default 10), TRAINPROF_STEPS
(steps timed, default 20; at least that many with TRAINPROF_SETTLE), TRAINPROF_MIN_S and TRAINPROF_SKIP_S
(seconds: without TRAINPROF_SETTLE, the timed window lasts at least MIN_S and the skipped steps at
least SKIP_S -- a fast variant's 20 steps are too short a window to time -- and TRAINPROF_MULTIPLE
rounds the steps timed up to a multiple of it: whole periods of a fix that logs every N steps), TRAINPROF_SETTLE (seconds:
time windows of steps until steady state, as the capture does -- steady.py -- within that
budget; 0, the default: the TRAINPROF_STEPS steps after the skipped ones), TRAINPROF_KNOBS (JSON:
settings applied as the script runs, without editing it -- {"loader": {...}} DataLoader keyword
arguments over the script's own, {"tf32": true}, {"fused": true} fused optimizers, {"compile": true}
torch.compile on the model), TRAINPROF_LOSSES (instead of timing: record the value
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


def _knobs(torch, knobs: dict) -> None:
    """Settings a trial sweeps, applied at run time: a knob needs no literal in the source."""
    loader = knobs.get("loader") or {}
    if loader:
        cls = torch.utils.data.DataLoader
        orig = cls.__init__

        def __init__(self, *a, **k):
            k.update(loader)
            if not k.get("num_workers"):  # options that need workers
                for key in ("persistent_workers", "prefetch_factor"):
                    k.pop(key, None)
            orig(self, *a, **k)

        cls.__init__ = __init__
    if knobs.get("tf32"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if knobs.get("fused"):
        _fused_optimizers(torch)
    if knobs.get("compile"):
        _compile_model(torch)


def _fused_optimizers(torch) -> None:
    """Adam, AdamW and SGD built with fused=True (one kernel per step for all parameters) where
    the script chose neither fused nor foreach and every parameter is on a GPU."""
    for cls in {torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD}:
        orig = cls.__dict__.get("__init__")
        if orig is None:
            continue

        def __init__(self, params, *a, _orig=orig, **k):
            if k.get("fused") is None and k.get("foreach") is None:
                if isinstance(params, torch.Tensor):
                    params = [params]
                groups = [dict(g, params=list(g["params"]) if not isinstance(g["params"], torch.Tensor) else [g["params"]])
                          if isinstance(g, dict) else g for g in params]
                flat = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
                if flat and all(isinstance(p, torch.Tensor) and p.is_cuda and p.is_floating_point() for p in flat):
                    k["fused"] = True
                params = groups
            _orig(self, params, *a, **k)

        cls.__init__ = __init__


COMPILE_LOOK = 2000  # module calls looked at for the model before giving up (each sums its parameters)


def _compile_model(torch) -> None:
    """torch.compile on the model, in place (Module.compile(): the script's own variable keeps
    working): the first module called, once an optimizer exists, that holds at least half of the
    optimizers' parameters -- the outermost, as its call begins before its children's."""
    wanted: dict[int, int] = {}
    Opt, M = torch.optim.Optimizer, torch.nn.Module
    opt_init, call = Opt.__init__, M.__call__
    looked = [0]

    def __init__(self, *a, **k):
        opt_init(self, *a, **k)
        for g in self.param_groups:
            for p in g["params"]:
                wanted[id(p)] = p.numel()

    def __call__(self, *a, **k):
        if wanted:
            looked[0] += 1
            total = sum(wanted.values())
            if 2 * sum(wanted.get(id(p), 0) for p in self.parameters()) >= total:
                M.__call__ = call
                self.compile()
            elif looked[0] >= COMPILE_LOOK:
                M.__call__ = call
        return call(self, *a, **k)

    Opt.__init__ = __init__
    M.__call__ = __call__


class _Search:
    """Windows of steps until steady state (steady.py), as the capture times them: synced at
    each window's edge, the DataLoaders' queues read there."""

    def __init__(self, torch, skip: int, steps: int, budget_s: float, window_s: float | None = None):
        from .probes import queued_batches, watch_loaders
        from .steady import MIN_WINDOW, WINDOW_S, Settle

        self.torch, self.level = torch, queued_batches
        self.loaders: dict = {}
        self.iters: dict = {}
        watch_loaders(torch, self.loaders, lambda: self.k, self.iters)  # steps counted from the skipped ones' end
        self.settle = Settle(min_steps=steps, budget_s=budget_s, window_s=window_s or WINDOW_S)
        self.win, self.k, self.t = (0, MIN_WINDOW), 0, []

    def mark(self, k: int) -> bool:
        """Step k since the skipped ones ended; True once the search is over."""
        from .steady import Window

        self.k = k
        first, size = self.win
        if k not in (0, first + size):
            self.t.append(time.perf_counter())
            return False
        _sync(self.torch)
        self.t.append(time.perf_counter())
        if k == 0:
            return False
        t = self.t[first:]
        w = Window(first, size, t[-1] - t[0], tuple(b - a for a, b in zip(t, t[1:])),
                   level=self.level(self.iters))
        if self.settle.add(w, self.settle.see_loaders(self.loaders.values())) or self.settle.over_budget or k >= 5000:
            return True
        self.win = (k, self.settle.next_size(w.per_step))
        return False

    def result(self) -> dict:
        r = self.settle.result()
        return {"step_ms": r["step_ms"], "steps": r["steps"], "steady": r["reached"],
                "p10_ms": r["p10_ms"], "p90_ms": r["p90_ms"]}


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
    _knobs(torch, json.loads(os.environ.get("TRAINPROF_KNOBS") or "{}"))
    state = {"n": 0, "pacer": None, "t0": 0.0, "start": 0.0, "end": 0}
    min_s = float(os.environ.get("TRAINPROF_MIN_S", 0) or 0)
    skip_s = float(os.environ.get("TRAINPROF_SKIP_S", 0) or 0)
    multiple = max(int(os.environ.get("TRAINPROF_MULTIPLE", 1) or 1), 1)
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

    settle = float(os.environ.get("TRAINPROF_SETTLE", 0) or 0)
    window_s = float(os.environ.get("TRAINPROF_WINDOW_S", 0) or 0) or None
    search = _Search(torch, skip, steps, settle, window_s) if settle > 0 else None

    def hook(opt, a, k):
        if state["pacer"] is None:
            state["pacer"] = opt
        if opt is not state["pacer"] or n_losses:
            return
        state["n"] += 1
        if search is not None:
            if state["n"] >= skip and search.mark(state["n"] - skip):
                _done(dict(search.result(), script=script, skip=skip))
            return
        if not state["t0"]:
            if state["n"] == 1:
                state["start"] = time.perf_counter()
            # skipped: `skip` steps and, given SKIP_S, that many seconds (unsynced: the queue is bounded)
            if state["n"] >= skip and time.perf_counter() - state["start"] >= skip_s:
                _sync(torch)
                state["t0"], state["skip"] = time.perf_counter(), state["n"]
            return
        k = state["n"] - state["skip"]
        if not state["end"] and k >= steps and time.perf_counter() - state["t0"] >= min_s:
            state["end"] = state["skip"] + -(-k // multiple) * multiple
        if state["end"] and state["n"] >= state["end"]:
            _sync(torch)
            _done({"script": script, "step_ms": (time.perf_counter() - state["t0"]) * 1000 / k,
                   "skip": state["skip"], "steps": k})

    register_optimizer_step_post_hook(hook)
    sys.argv = [script] + args
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")
    what = f"{len(losses)} losses" if n_losses else f"{state['n']} optimizer steps"
    _done({"script": script, "error": f"the script ended after {what}"})


if __name__ == "__main__":
    main()
