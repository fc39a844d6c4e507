"""The columnar trace model: one numpy array per field, names interned.

Only complete ('X') events are kept: those are the ones every analysis reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

# Categories as Kineto writes them.
CPU_OP = "cpu_op"
USER_ANNOTATION = "user_annotation"
PYTHON_FUNCTION = "python_function"
CUDA_RUNTIME = "cuda_runtime"
CUDA_DRIVER = "cuda_driver"
KERNEL = "kernel"
GPU_MEMCPY = "gpu_memcpy"
GPU_MEMSET = "gpu_memset"
GPU_USER_ANNOTATION = "gpu_user_annotation"
CUDA_SYNC = "cuda_sync"
GPU_CATEGORIES = (KERNEL, GPU_MEMCPY, GPU_MEMSET)


@dataclass(frozen=True, eq=False)
class Trace:
    path: str
    names: list[str]  # interned: name_id -> string
    cats: list[str]  # interned: cat_id -> string
    name_id: np.ndarray  # int32
    cat_id: np.ndarray  # int32
    ts: np.ndarray  # float64, microseconds
    dur: np.ndarray  # float64, microseconds
    pid: np.ndarray  # int64 (string pids interned to negative numbers)
    tid: np.ndarray  # int64
    corr: np.ndarray  # int64 correlation id, -1 when absent
    ext: np.ndarray  # int64 External id, -1 when absent
    py_id: np.ndarray  # int64 Python id (python_function), -1
    py_parent: np.ndarray  # int64 Python parent id, -1
    stream: np.ndarray  # int64 GPU stream, -1
    nbytes: np.ndarray  # int64 bytes moved (memcpy/memset), -1
    meta: dict = field(default_factory=dict)  # top-level metadata (deviceProperties, ...)
    thread_names: dict = field(default_factory=dict)  # (pid, tid) -> name

    def __len__(self) -> int:
        return len(self.ts)

    @cached_property
    def end(self) -> np.ndarray:  # computed once: analyses read it tens of thousands of times
        return self.ts + self.dur

    def cat_mask(self, *cats: str) -> np.ndarray:
        lut = np.zeros(len(self.cats), dtype=bool)  # a lookup is several times faster than np.isin
        lut[[self.cats.index(c) for c in cats if c in self.cats]] = True
        return lut[self.cat_id]

    def name_mask(self, predicate) -> np.ndarray:
        """Events whose name satisfies predicate(name): evaluated once per distinct name."""
        ok = np.fromiter((bool(predicate(n)) for n in self.names), dtype=bool, count=len(self.names))
        return ok[self.name_id] if len(self.names) else np.zeros(len(self), dtype=bool)

    def name(self, i: int) -> str:
        return self.names[self.name_id[i]]

    def cat(self, i: int) -> str:
        return self.cats[self.cat_id[i]]

    @property
    def has_cuda(self) -> bool:
        return bool(self.cat_mask(*GPU_CATEGORIES).any())

    @property
    def device_name(self) -> str | None:
        props = self.meta.get("deviceProperties") or []
        if props and isinstance(props[0], dict):
            return props[0].get("name")
        return None
