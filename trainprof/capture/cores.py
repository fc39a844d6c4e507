"""How much CPU the run really has: the cores it may use, and what that many processes get done
side by side.

`os.sched_getaffinity` counts the CPUs a process may be scheduled on, not what it gets: a
container's CPU quota (cgroups: a pod limited to 4 CPUs on a 64-CPU host sees 64), two hardware
threads of one core, and neighbours on a shared host all make N processes finish less than N
times one's work. A loader estimate spreads batches over workers, so it needs the second
number: measured here, with the cores' count of processes running the same CPU loop at once
against one alone (after the capture, the script stopped).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

# a process's loop: wait for the common start, run a fixed amount of work, print its time
_LOOP = ("import sys, time\n"
         "t0 = float(sys.argv[1])\n"
         "while time.time() < t0: time.sleep(0.0005)\n"
         "s = time.perf_counter(); n = 0\n"
         "for i in range(int(sys.argv[2])): n += i * i % 7\n"
         "print(time.perf_counter() - s)\n")
WORK = 600_000  # iterations of the loop: 50-100 ms on one core
MAX_PROCS = 64
# a step waiting on its DataLoader for less than this share makes no loader finding (dataloader-stall)
LOADER_SHARE = 0.05


def _cgroup_quota(root: str = "/sys/fs/cgroup", proc: str = "/proc/self/cgroup") -> float | None:
    """CPUs' worth of time the process's cgroup may use (cpu.max, or v1's cfs quota/period);
    None where unlimited or not found."""
    try:
        with open(proc) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for ln in lines:
        _, ctrl, path = ln.split(":", 2) if ln.count(":") >= 2 else ("", "", "")
        if ctrl == "":  # cgroup v2: cpu.max "QUOTA PERIOD" or "max PERIOD", here or in a parent
            best = None
            parts = [p for p in path.split("/") if p and p != ".."]
            for k in range(len(parts), -1, -1):
                q = (_read(os.path.join(root, *parts[:k], "cpu.max")) or "").split()
                v = _ratio(q[0], q[1]) if len(q) == 2 else None
                if v is not None:
                    best = v if best is None else min(best, v)
            if best is not None:
                return best
        elif "cpu" in ctrl.split(","):
            d = os.path.join(root, ctrl) if os.path.isdir(os.path.join(root, ctrl)) else os.path.join(root, "cpu")
            for base in (os.path.join(d, path.lstrip("/")), d):
                v = _ratio(_read(os.path.join(base, "cpu.cfs_quota_us")), _read(os.path.join(base, "cpu.cfs_period_us")))
                if v is not None:
                    return v
    return None


def _ratio(quota: str | None, period: str | None) -> float | None:
    """quota / period, both positive numbers; None for "max", -1 (v1's unlimited) or anything else."""
    try:
        q, p = float(quota or "nan"), float(period or "nan")
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 and math.isfinite(q / p) else None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read(256).strip()
    except (OSError, ValueError):
        return None


def available() -> int:
    """The CPUs this process may use: its affinity, no more than its cgroup's quota (rounded up)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    q = _cgroup_quota()
    return max(1, min(n, math.ceil(q))) if q else n


def _times(n: int, work: int, timeout: float) -> list[float]:
    start = time.time() + 0.3 + 0.02 * n  # the processes' start-up is not timed
    procs = [subprocess.Popen([sys.executable, "-S", "-c", _LOOP, repr(start), str(work)], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in range(n)]
    out, deadline = [], time.monotonic() + timeout  # one deadline for all: a stuck host costs timeout, no more
    for p in procs:
        try:
            o, _ = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
            out.append(float(o.strip()))
        except (subprocess.TimeoutExpired, ValueError):
            p.kill()
            p.wait()
    return out


def parallel(n: int, work: int = WORK, timeout: float = 20.0) -> dict | None:
    """What n processes get done at once, in processes' worth: n x (one alone's time) / (their
    mean time). None where n < 2 or the processes did not all report."""
    n = min(n, MAX_PROCS)
    if n < 2:
        return None
    try:
        one = min(_times(1, work, timeout) + _times(1, work, timeout))  # the faster of two: warm caches, clocks up
        many = _times(n, work, timeout)
    except (OSError, ValueError):
        return None
    if len(many) < n or one <= 0:
        return None
    mean = sum(many) / len(many)
    return {"procs": n, "speedup": round(n * one / mean, 3), "one_ms": round(1000 * one, 3),
            "mean_ms": round(1000 * mean, 3)}


def worth_probing(run: dict) -> bool:
    """Whether a run's estimates could read parallel(): a DataLoader on more than two cores,
    with workers (their pace bounds every fix's estimate) or, without, a steady wait for it
    that dataloader-stall could report (half its share: the step it divides by is timed apart)."""
    if not run.get("loaders") or int(run.get("cores") or 1) <= 2:
        return False
    if any(ld.get("num_workers") for ld in run["loaders"]):
        return True
    st = run.get("steady") or {}
    wait, step = st.get("loader_wait_ms"), st.get("step_ms")
    return wait is None or not step or wait >= 0.5 * LOADER_SHARE * step

