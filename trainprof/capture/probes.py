"""What the child reads of the run besides the trace: each DataLoader's configuration as
iterated, and the CUDA caching allocator's peaks."""

from __future__ import annotations

from typing import Callable


def watch_loaders(torch, loaders: dict, steps_done: Callable[[], int]) -> None:
    """Record each DataLoader's real configuration when it is iterated, into loaders (by id):
    the source may compute num_workers, and the prefetch buffer decides how many steps the
    loader can hide its cost for."""
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
        return orig(dl)

    cls.__iter__ = __iter__


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
