"""Inside the loader: which lines of the user's Dataset, transforms and collate function make a
batch, timed in the training process after the trace.

The workers run that code in other processes, out of the line recorder's reach; so a few batches
are made again here, as a worker would make them (the loader's own sampler, dataset and collate
function, one batch at a time), under a line recorder that shares the capture's file table.
Each line's time per batch goes to loader_lines.json, which the loader finding reads.
"""

from __future__ import annotations

import json
import time

from ..errors import TrainprofError
from ..files import write_atomic
from .recorder import LineRecorder

BATCHES, BUDGET_S = 3, 5.0  # batches made at most, and the time they may take


def sample(iters: dict, recorder: LineRecorder, path: str, torch) -> bool:
    """Make up to BATCHES batches of the first live map-style loader under a recorder; write its
    log to path. False where there is none to sample (iterable datasets: their order is theirs)."""
    it = next((ref() for ref in iters.values() if ref() is not None and hasattr(ref(), "_index_sampler")), None)
    if it is None or getattr(it, "_dataset_kind", None) != 0:  # 0: _DatasetKind.Map
        return False
    dataset, collate = it._dataset, it._collate_fn
    rec = LineRecorder([], share=recorder)
    done, t_end = 0, time.monotonic() + BUDGET_S
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker (torch's worker loop sets one thread)
    try:
        order = iter(it._index_sampler)
        start = time.perf_counter_ns()
        rec.start()
        for idx in order:
            collate([dataset[i] for i in idx] if it._auto_collation else dataset[idx])
            done += 1
            if done >= BATCHES or time.monotonic() > t_end:
                break
        rec.stop()
        end = time.perf_counter_ns()
    except Exception:  # the user's dataset failed here: the finding just has no lines
        rec.stop()
        return False
    finally:
        torch.set_num_threads(threads)
    if not done:
        return False
    doc = rec.to_json()
    # no initial stack: time outside the dataset's and the collate function's frames (this
    # module's loop) belongs to no user line
    part = {"steps": done, "initial_stack": [], "events": doc["events"], "start": start, "end": end}
    try:
        write_atomic(path, json.dumps({"files": doc["files"], "batches": part}).encode())
    except (OSError, TrainprofError):  # a link or a folder where the file goes (a hostile run directory)
        return False
    return True

