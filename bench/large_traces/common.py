"""Paths, constants and small helpers shared by the build, the measures and the report."""

from __future__ import annotations

import gzip
import json
import os
import re

PKG_DIR = os.path.dirname(os.path.abspath(__file__))  # bench/large_traces
ROOT = os.path.dirname(os.path.dirname(PKG_DIR))
DEFAULT_OUT = "/tmp/trainprof-large"
DEFAULT_SOURCE = os.path.join(ROOT, "sample_traces", "item_sync")
MD = os.path.join(ROOT, "bench", "LARGE_TRACES.md")
MB = 1_000_000

GPU_CATS = {"kernel", "gpu_memcpy", "gpu_memset", "gpu_user_annotation"}
STEP_RE = re.compile(r"ProfilerStep#(\d+)$")


def slurp(path: str, mode: str = "r"):
    with open(path, mode) as f:
        return f.read()


def load(path: str):
    return json.loads(slurp(path))


def find_trace(run_dir: str) -> str:
    run = load(os.path.join(run_dir, "run.json"))
    path = os.path.join(run_dir, run["trace"])
    if not os.path.isfile(path):
        path = next(os.path.join(run_dir, f) for f in sorted(os.listdir(run_dir)) if ".pt.trace.json" in f)
    return path


def read_bytes(path: str) -> bytes:
    """The file's bytes, gunzipped if it is gzip."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


def read_json(path: str):
    return json.loads(read_bytes(path))


def end(e) -> float:
    return e["ts"] + (e.get("dur") or 0.0)


def size_label(mb: int) -> str:
    return f"{mb}mb"


def run_dirs(out: str, name: str, mb: int) -> tuple[str, str]:
    base = os.path.join(out, f"{name}-{size_label(mb)}")
    return base + "-json", base + "-gz"
