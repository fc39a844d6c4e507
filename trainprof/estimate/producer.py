"""The input pipeline as a producer: a DataLoader's workers make batches at a measured pace, and
no fix makes the step faster than they deliver.

The capture times every batch a worker makes (wall and CPU time, capture/probes.py); a batch
takes W of wall time, C of it on a CPU. W workers deliver a batch every W/workers, unless their
CPU time needs more cores than the run has: the training process keeps one, so the workers'
CPU work is spread over the rest at most. A worker's wall time beyond its CPU time is waiting
(I/O, sleep): more workers overlap it, past the core count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_WORKERS = 32  # the most workers a fix proposes (memory: each holds a copy of the dataset)
PER_CORE = 4  # ... and no more than this many a core: past it their own scheduling and IPC are not measured


@dataclass(frozen=True)
class Producer:
    workers: int  # as run
    batch_wall_us: float  # one batch, in one worker
    batch_cpu_us: float
    cores: int  # available to the run (sched_getaffinity)
    batches_per_step: float = 1.0  # batches the training thread takes per step (gradient accumulation: more)
    batches: int = 0  # batches timed
    parallel: float = 0.0  # what cores - 1 processes get done at once, in processes' worth (0: not measured)

    @property
    def spare(self) -> float:
        """The cores the workers have: all but the training process's, no more than that many
        processes were measured to get done side by side (a quota, hardware threads, neighbours)."""
        n = max(1, self.cores - 1)
        return max(1.0, min(n, self.parallel)) if self.parallel else n

    def period_us(self, workers: int | None = None) -> float:
        """The step can be no shorter than this: the time `workers` workers take to make one
        step's batches."""
        w = max(1, workers or self.workers)
        per_batch = max(self.batch_wall_us / w, self.batch_cpu_us / min(w, self.spare))
        return self.batches_per_step * per_batch

    def workers_for(self, step_us: float) -> int:
        """The fewest workers that deliver a step's batches within step_us (MAX_WORKERS, and
        PER_CORE a core, at most; no more than help: past the cores, only waiting overlaps)."""
        if step_us <= 0:
            return self.workers
        need = math.ceil(self.batches_per_step * self.batch_wall_us / step_us)
        best = min(max(need, 1), MAX_WORKERS, PER_CORE * self.cores)
        # beyond what the CPU allows, more workers only add processes
        floor_cpu = self.batches_per_step * self.batch_cpu_us / self.spare
        while best > 1 and self.period_us(best - 1) <= max(step_us, floor_cpu) * 1.001:
            best -= 1
        return best

    @property
    def cpu_share(self) -> str:
        """A batch's CPU share of its wall time, as a message says it."""
        return f"{100 * min(self.batch_cpu_us / self.batch_wall_us, 1.0):.0f}%" if self.batch_wall_us else "none"

    @property
    def cpu_bound(self) -> bool:
        """The workers' time is mostly computing (more workers than spare cores do not help)."""
        return self.batch_cpu_us >= 0.5 * self.batch_wall_us


def cores_of(info: dict) -> int:
    """run.json's cores available to the run (older runs: the machine's count)."""
    return int(info.get("cores") or info.get("cpu_count") or 1)


def parallel_of(info: dict) -> float:
    """run.json's measured side-by-side throughput of the cores' processes (0: not measured)."""
    p = info.get("parallel") or {}
    return float(p.get("speedup") or 0.0) if isinstance(p, dict) else 0.0


def producer(info: dict, batches_per_step: float = 1.0) -> Producer | None:
    """The first multi-process DataLoader's measured pace, from run.json (None: no workers, or
    none timed)."""
    fetch = (info.get("fetches") or {}).get("workers") or {}
    loaders = [ld for ld in info.get("loaders") or [] if ld.get("num_workers")]
    n = int(fetch.get("batches") or 0)
    if not loaders or n <= 0:
        return None
    return Producer(workers=int(loaders[0]["num_workers"]), batch_wall_us=1000 * float(fetch.get("wall_ms") or 0) / n,
                    batch_cpu_us=1000 * float(fetch.get("cpu_ms") or 0) / n, cores=cores_of(info),
                    batches_per_step=max(batches_per_step, 1e-3), batches=n, parallel=parallel_of(info))


FULL = 0.9  # a training process using this share of the cores' time leaves none to spare


def capacity_us(info: dict, prod: Producer | None, multi: bool, cores: int) -> float | None:
    """The step can be no shorter than the CPU work of a step over the cores: the training
    process's own (all its threads, timed over the steady windows: loading included where it runs
    there) and, with workers, theirs for a step's batches. Moving loading into workers moves it,
    it does not remove it: on 2 cores that a training process already keeps busy (intra-op
    threads), workers compete with it -- seen: 0 -> 1-2 workers measured 0.76-0.90x on two real
    scripts whose step was half loading. None where the steady windows were not timed, or where
    the process leaves cores spare."""
    steady = info.get("steady") or {}
    cpu_ms, step_ms = steady.get("cpu_ms"), steady.get("step_ms")
    if not cpu_ms or not step_ms or cores < 1:
        return None
    work = 1000 * float(cpu_ms) + (prod.batch_cpu_us * prod.batches_per_step if multi and prod else 0.0)
    if work < FULL * cores * 1000 * float(step_ms):
        # spare cores: what the process's threads burn beside the work (intra-op threads spinning)
        # is no measure of what a worker would need (seen on 16 cores: 8 of them busy a step, the
        # loading 19x faster in workers) -- the producer's pace bounds the step then
        return None
    return work / cores
