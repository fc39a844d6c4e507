"""Time a training script's steps without the profiler: python bench/steptime.py SCRIPT [ARGS...]

Runs the script in this process, skips --skip steps, then times --steps optimizer
steps with one device sync at each edge; prints one JSON line and exits.
Environment: STEPTIME_SKIP (default 10), STEPTIME_STEPS (default 20).
"""
import json
import os
import runpy
import sys
import time

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

skip = int(os.environ.get("STEPTIME_SKIP", 10))
steps = int(os.environ.get("STEPTIME_STEPS", 20))
script, args = sys.argv[1], sys.argv[2:]
state = {"n": 0, "pacer": None}


def sync():
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def hook(opt, a, k):
    if state["pacer"] is None:
        state["pacer"] = opt
    if opt is not state["pacer"]:
        return
    state["n"] += 1
    if state["n"] == skip:
        sync()
        state["t0"] = time.perf_counter()
    elif state["n"] == skip + steps:
        sync()
        ms = (time.perf_counter() - state["t0"]) * 1000 / steps
        print(json.dumps({"script": script, "step_ms": ms}), flush=True)
        sys.stderr.flush()
        os._exit(0)


register_optimizer_step_post_hook(hook)
sys.argv = [script] + args
sys.path[0] = os.path.dirname(os.path.abspath(script))
runpy.run_path(script, run_name="__main__")
print(json.dumps({"script": script, "error": f"only {state['n']} steps"}), flush=True)
