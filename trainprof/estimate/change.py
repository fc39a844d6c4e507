"""A fix, as a change to the recorded timelines: what a rule states in a WhatIf."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Change:
    """A fix, as a change to the recorded timelines. Intervals are on the trace clock (µs)."""

    # Main-thread time deleted, (start, end), or shrunk to a share, (start, end, keep);
    # GPU work launched inside is dropped.
    remove_cpu: tuple[tuple[float, ...], ...] = ()
    drop_syncs: frozenset[int] = frozenset()  # sync events (trace indices) that no longer wait
    drop_gpu: frozenset[int] = frozenset()  # GPU events (trace indices) no longer run
    gpu_scale: tuple[tuple[int, float], ...] = ()  # GPU event -> duration factor
    # The data loader's pace after the fix (unprofiled µs per step): the step can be no faster.
    # 0: as measured in this run (estimate/producer.py), for every fix that leaves the loader be.
    floor_us: float = 0.0
    # Main-thread time shrunk to a share, (start, end, keep), with the GPU work issued
    # inside kept: launches made cheap (a CUDA graph replay issues them all at once)
    squeeze_cpu: tuple[tuple[float, float, float], ...] = ()

    def __or__(self, other: Change) -> Change:
        return Change(
            self.remove_cpu + other.remove_cpu,
            self.drop_syncs | other.drop_syncs,
            self.drop_gpu | other.drop_gpu,
            self.gpu_scale + other.gpu_scale,
            max(self.floor_us, other.floor_us),
            self.squeeze_cpu + other.squeeze_cpu,
        )

    @property
    def empty(self) -> bool:
        return not (self.remove_cpu or self.drop_syncs or self.drop_gpu or self.gpu_scale or self.floor_us
                    or self.squeeze_cpu)
