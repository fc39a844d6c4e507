"""Calibration on the user's device: what bf16 (and TF32) does to this run's own heaviest
matmuls and convolutions, measured here rather than taken from a table made on another GPU.

Runs in the child once the run's steps are timed (stepper.py): the fp32 matmul and convolution
shapes that took the most device time in the profiled steps (the profiler's own events, with
their input shapes) are each timed in fp32 (TF32 off), TF32 and bf16, on the run's device with
CUDA events, a few repetitions after a warm-up. Matmuls forward only (their backward matmuls
are recorded as shapes of their own); convolutions forward and backward (one backward op of the
forward's shapes). Results are cached per device and torch version (shape by shape), so a
second run of the same model costs nothing. rules/fp32_compute.py reads the ratios from the run
directory's precision.json; without it, the table it was written with.
"""

from __future__ import annotations

import ast
import json
import os
import re
import time

from ..files import RefusedPath, read_regular, write_atomic
from .rundir import PRECISION_JSON

GEMM_OPS = {"aten::mm": "mm", "aten::addmm": "addmm", "aten::bmm": "bmm", "aten::baddbmm": "baddbmm"}
CONV_OPS = {"aten::convolution": "conv"}
TOP = 4  # shapes per class
REPS, WARM, BATCHES = 10, 3, 3
BUDGET_S = 15.0  # all the timing, at most (a shape that would pass it is skipped)
MAX_ELEMS = 1 << 28  # an operand larger than this (1 GiB in fp32) is not allocated again


def _device_us(e) -> float:
    for k in ("device_time_total", "cuda_time_total"):  # the name changed in torch 2.4-2.6
        v = getattr(e, k, None)
        if isinstance(v, (int, float)):
            return float(v)
    return 0.0


def _floats(types) -> bool:
    return bool(types) and all(t in ("float", "") for t in types[:2]) and types[0] == "float"


def _conv_params(concrete) -> dict | None:
    """stride, padding, dilation, transposed, groups of aten::convolution's concrete inputs."""
    try:
        lists = [ast.literal_eval(c) if isinstance(c, str) and c else c for c in concrete[3:9]]
        stride, padding, dilation, transposed, _, groups = lists
        if transposed not in (False, None) or not isinstance(stride, list):
            return None  # transposed convolutions: not timed
        return {"stride": stride, "padding": padding, "dilation": dilation, "groups": int(groups or 1)}
    except (ValueError, TypeError, IndexError, SyntaxError):
        return None


def shapes(events, top: int = TOP, weight=_device_us) -> list[dict]:
    """The fp32 matmul and convolution shapes with the most device time (weight) among `events`
    (the profiler's FunctionEvents), `top` per class, with that time (us) and their count."""
    acc: dict[str, dict] = {}
    for e in events:
        name = getattr(e, "name", "")
        op = GEMM_OPS.get(name) or CONV_OPS.get(name)
        if op is None:
            continue
        dims = [list(d) for d in (getattr(e, "input_shapes", None) or [])]
        # the inputs' dtypes (torch 2.6+; before, every recorded float-named op counts: the
        # kernels' names still tell fp32 ones in the rule)
        types = list(getattr(e, "input_dtypes", None) or getattr(e, "input_types", None) or [])
        if types and not _floats(types):
            continue
        spec = {"op": op, "dims": dims[:3] if op != "conv" else dims[:2]}
        if op == "conv":
            p = _conv_params(list(getattr(e, "concrete_inputs", None) or []))
            if p is None or len(dims) < 2 or len(dims[0]) not in (3, 4, 5):
                continue
            spec.update(p)
        elif op in ("mm", "bmm") and len(dims) < 2 or op in ("addmm", "baddbmm") and len(dims) < 3:
            continue
        key = json.dumps(spec, sort_keys=True)
        a = acc.setdefault(key, dict(spec, us=0.0, count=0))
        a["us"] += weight(e)
        a["count"] += 1
    out = []
    for cls in ("gemm", "conv"):
        mine = sorted((a for a in acc.values() if (a["op"] == "conv") == (cls == "conv") and a["us"] > 0),
                      key=lambda a: -a["us"])
        out += [dict(a, cls=cls) for a in mine[:top]]
    return out


def _operands(torch, spec: dict, device, dtype):
    g = torch.Generator(device=device).manual_seed(0)

    def rand(shape, grad=False):
        return torch.randn(shape, device=device, dtype=dtype, generator=g).requires_grad_(grad)

    op, d = spec["op"], spec["dims"]
    if op == "mm":
        return lambda a, b: a @ b, [rand(d[0]), rand(d[1])]
    if op == "bmm":
        return torch.bmm, [rand(d[0]), rand(d[1])]
    if op == "addmm":
        return torch.addmm, [rand(d[0]), rand(d[1]), rand(d[2])]
    if op == "baddbmm":
        return torch.baddbmm, [rand(d[0]), rand(d[1]), rand(d[2])]
    x, w = rand(d[0], True), rand(d[1], True)
    nd = len(d[0]) - 2
    conv = getattr(torch.nn.functional, f"conv{nd}d")

    def fwd_bwd(x, w):
        y = conv(x, w, None, spec["stride"], spec["padding"], spec["dilation"], spec["groups"])
        y.backward(torch.ones_like(y))
        return y

    return fwd_bwd, [x, w]


def _time_us(torch, spec: dict, device, mode: str) -> float:
    """One shape's time (µs per call) in mode fp32 / tf32 / bf16."""
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        torch.backends.cudnn.allow_tf32 = mode == "tf32"
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    fn, args = _operands(torch, spec, device, dtype)
    for _ in range(WARM):
        fn(*args)
    best = float("inf")
    for _ in range(BATCHES):  # the fastest batch: a first use's set-up, or a stray delay, is no rate
        if cuda:
            torch.cuda.synchronize(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(REPS):
                fn(*args)
            end.record()
            end.synchronize()
            best = min(best, 1000 * start.elapsed_time(end) / REPS)
        else:
            t = time.perf_counter()
            for _ in range(REPS):
                fn(*args)
            best = min(best, 1e6 * (time.perf_counter() - t) / REPS)
    return best


def _too_big(spec: dict) -> bool:
    n = 1
    for d in spec["dims"]:
        k = 1
        for x in d:
            k *= x
        n = max(n, k)
    return n > MAX_ELEMS


def cache_path(device_name: str, torch_version: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{device_name}-{torch_version}")[:120]
    return os.path.join(base, "trainprof", f"precision-{tag}.json")


def _read_cache(path: str) -> dict:
    try:
        got = json.loads(read_regular(path, 64 << 20))  # a regular file only: a FIFO there would hang
        return got if isinstance(got, dict) else {}
    except (OSError, ValueError, RecursionError):
        return {}


def measure(torch, specs: list[dict], device, device_name: str, budget_s: float = BUDGET_S) -> dict:
    """precision.json's content: each shape's time in fp32, tf32 and bf16 (from the cache where
    it has them), and the ratios by class, weighted by the shapes' device time in the run."""
    path = cache_path(device_name, torch.__version__)
    cache, fresh = _read_cache(path), 0
    keep = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    t0 = time.monotonic()
    timed = []
    try:
        for s in specs:
            key = json.dumps({k: s[k] for k in s if k not in ("us", "count", "cls")}, sort_keys=True)
            got = cache.get(key)
            if got is None:
                if _too_big(s) or time.monotonic() - t0 > budget_s:
                    continue
                try:
                    got = {m: _time_us(torch, s, device, m) for m in ("fp32", "tf32", "bf16")}
                except (RuntimeError, ValueError):  # out of memory, an op this torch lacks
                    continue
                cache[key], fresh = got, fresh + 1
            timed.append(dict(s, **{f"{m}_us": v for m, v in got.items()}))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = keep
    if fresh:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            write_atomic(path, json.dumps(cache).encode())  # runs at once each write a whole cache
        except (OSError, RefusedPath):  # RefusedPath: a link where the cache goes, not followed
            pass  # no cache: measured again next time
    return {"device": device_name, "torch": torch.__version__, "shapes": timed, "cached": len(timed) - fresh,
            "ratios": ratios(timed)}


def ratios(timed: list[dict]) -> dict:
    """bf16 over fp32 time for each class (gemm, conv), and bf16 over TF32 (either class), each
    weighted by the shapes' device time in the run."""
    out = {}
    for cls, num, den in (("gemm", "bf16_us", "fp32_us"), ("conv", "bf16_us", "fp32_us"), ("tf32", "bf16_us", "tf32_us")):
        rows = [t for t in timed if (cls == "tf32" or t["cls"] == cls) and t.get(den, 0) > 0]
        w = sum(t["us"] for t in rows)
        if rows and w > 0:
            out[cls] = sum(t["us"] * t[num] / t[den] for t in rows) / w
    return out


def calibrate(torch, prof, device, run_dir: str) -> None:
    """In the child: time the profiled steps' heaviest fp32 shapes, write RUN_DIR/precision.json.
    Never fails the run: a calibration that cannot be made is left out (the rule says so)."""
    try:
        specs = shapes(prof.events())
        if not specs:
            return
        dev = torch.device("cuda", device if isinstance(device, int) else torch.cuda.current_device())
        out = measure(torch, specs, dev, torch.cuda.get_device_name(dev))
    except Exception as e:  # noqa: BLE001 -- the user's run is done: a failed calibration costs only itself
        out = {"error": f"{type(e).__name__}: {e}"[:300]}
    try:
        write_atomic(os.path.join(run_dir, PRECISION_JSON), (json.dumps(out, indent=1) + "\n").encode())
    except (OSError, RefusedPath):  # a link planted where it goes: not written, the run goes on
        pass
