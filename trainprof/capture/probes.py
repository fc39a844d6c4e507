"""What the child reads of the run besides the trace: each DataLoader's configuration as
iterated, the time its batches take to make, the CUDA caching allocator's peaks, the GPUs in use,
the ranks' meeting points, and the profiler as configured."""

from __future__ import annotations

import time
import weakref
from typing import Callable


def watch_loaders(torch, loaders: dict, steps_done: Callable[[], int], iters: dict | None = None) -> None:
    """Record each DataLoader's real configuration when it is iterated, into loaders (by id):
    the source may compute num_workers, and the prefetch buffer decides how many steps the
    loader can hide its cost for. iters gets (by id) a weak reference to each one's latest
    iterator, whose queue queued_batches() reads."""
    cls = torch.utils.data.DataLoader
    orig = cls.__iter__

    def __iter__(dl):
        if id(dl) not in loaders and len(loaders) < 16:
            w = int(getattr(dl, "num_workers", 0) or 0)
            loaders[id(dl)] = {
                "num_workers": w,
                "prefetch_factor": getattr(dl, "prefetch_factor", None) if w else None,
                "batch_size": getattr(dl, "batch_size", None),
                "pin_memory": bool(getattr(dl, "pin_memory", False)),
                "persistent_workers": bool(getattr(dl, "persistent_workers", False)),
                "first_step": steps_done(),
            }
        if id(dl) in loaders:  # a new pass (epoch): workers restart unless persistent, the queue refills
            loaders[id(dl)]["last_iter"] = steps_done()
        it = orig(dl)
        if iters is not None and id(dl) in loaders:
            try:
                iters[id(dl)] = weakref.ref(it)
            except TypeError:  # an iterator of the user's own making
                pass
        return it

    cls.__iter__ = __iter__


def watch_waits(torch, waits: dict) -> None:
    """Add the time the training thread spends in every DataLoader's __next__ to waits["s"]:
    what the steps wait for batches, unprofiled."""
    import time

    from torch.utils.data import dataloader as D

    cls = D._BaseDataLoaderIter
    orig = cls.__next__
    waits.setdefault("s", 0.0)

    def __next__(it):
        t = time.perf_counter()
        try:
            return orig(it)
        finally:
            waits["s"] += time.perf_counter() - t

    cls.__next__ = __next__


def queued_batches(iters: dict) -> int | None:
    """Batches made by a multi-process DataLoader's workers and not yet taken, over the live
    iterators: those in its result queue and those that came out of order. None when none is
    readable (no workers; a platform where a queue's size is unknown)."""
    n, seen = 0, False
    for ref in list(iters.values()):
        it = ref()
        q = getattr(it, "_data_queue", None)
        if q is None:
            continue
        try:
            n += q.qsize()
        except (NotImplementedError, OSError, AttributeError):  # macOS: no sem_getvalue
            continue
        n += sum(1 for v in getattr(it, "_task_info", {}).values() if isinstance(v, tuple) and len(v) == 2)
        seen = True
    return n if seen else None


def memory(torch, device: int) -> dict | None:
    """The CUDA caching allocator's peaks so far (bytes) and the device's capacity."""
    try:
        free, total = torch.cuda.mem_get_info(device)
        return {"peak_allocated": torch.cuda.max_memory_allocated(device),
                "peak_reserved": torch.cuda.max_memory_reserved(device),
                "reserved": torch.cuda.memory_reserved(device), "free": free, "total": total,
                "alloc_retries": torch.cuda.memory_stats(device).get("num_alloc_retries", 0)}
    except Exception:  # an odd device or build: the memory rule then says it has no record
        return None


def watch_fetches(torch, report: Callable[[dict], None], every_s: float = 0.5) -> None:
    """Time every batch a DataLoader fetches -- in its worker processes (forked: they inherit
    this patch) and in the main process (num_workers=0): wall and CPU seconds. Each process
    reports its running totals through report() at most every every_s seconds; the producer's
    measured pace is what the loader's estimate rests on, and whether its time is the CPU's
    (bound by the cores) or waiting (I/O: more workers help past the core count)."""
    import os
    import time

    from torch.utils.data._utils import fetch as F

    totals = {"pid": None, "batches": 0, "wall_s": 0.0, "cpu_s": 0.0, "sent": 0.0}

    def timed(orig):
        def fetch(self, possibly_batched_index):
            t, c = time.perf_counter(), time.thread_time()
            try:
                return orig(self, possibly_batched_index)
            finally:
                if totals["pid"] != os.getpid():  # a new worker: its own totals
                    totals.update(pid=os.getpid(), batches=0, wall_s=0.0, cpu_s=0.0, sent=0.0)
                now = time.perf_counter()
                totals["batches"] += 1
                totals["wall_s"] += now - t
                totals["cpu_s"] += time.thread_time() - c
                if now - totals["sent"] >= every_s:
                    totals["sent"] = now
                    report({k: v for k, v in totals.items() if k != "sent"})

        return fetch

    for cls in (F._MapDatasetFetcher, F._IterableDatasetFetcher):
        cls.fetch = timed(cls.fetch)


def devices(torch) -> list[int]:
    """The GPUs this process computes on: the current one, and any the caching allocator
    holds memory on. A rank of a script that never calls torch.cuda.set_device() computes
    on cuda:LOCAL_RANK while its current device stays cuda:0: synchronizing only that one
    would not wait for its work (seen: a rank timing 10 ms steps, its lockstep peer 17 ms).
    (Read at the window edges only: a few allocator queries.)"""
    used = {d for d in range(torch.cuda.device_count()) if torch.cuda.memory_reserved(d) > 0}
    return sorted(used | {torch.cuda.current_device()})


def together(world: int, key: str, timeout: float = 60.0) -> None:
    """Wait, through the process group's store (not a collective), until every rank of `world`
    is here. Before leaving: a rank that leaves first can take with it what a peer's last
    collective still needs from it (seen on 2 H200s: NCCL's proxy thread; the peer then
    waited in cuda.synchronize() until killed)."""
    try:
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        store = dist.distributed_c10d._get_default_store()
        store.add(key, 1)
        t0 = time.monotonic()
        while store.add(key, 0) < world and time.monotonic() - t0 < timeout:
            time.sleep(0.01)
    except Exception:  # the store went with a rank that left: nothing more to wait for
        pass


def new_profiler(cuda: bool, warmup: int, active: int, on_trace_ready, cfg: dict):
    """torch.profiler for the recorded steps: warm-up, then `active` steps, with shapes and
    stacks as configured, and CUDA sync events where this torch has them."""
    from torch.profiler import ProfilerActivity, profile, schedule

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    kwargs = dict(activities=acts, schedule=schedule(wait=0, warmup=warmup, active=active, repeat=1),
                  on_trace_ready=on_trace_ready, record_shapes=cfg.get("record_shapes", True),
                  with_stack=cfg.get("with_stack", True))
    if cuda:
        try:
            from torch._C._profiler import _ExperimentalConfig

            kwargs["experimental_config"] = _ExperimentalConfig(enable_cuda_sync_events=True)
        except (ImportError, TypeError):
            pass
    return profile(**kwargs)
