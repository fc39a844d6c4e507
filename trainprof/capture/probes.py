"""What the child reads of the run besides the trace: each DataLoader's configuration as
iterated, the time its batches take to make, and the CUDA caching allocator's peaks."""

from __future__ import annotations

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
