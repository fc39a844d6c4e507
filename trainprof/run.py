"""The Run: one capture, loaded and measured once, before any rule reads it.

engine.py builds it from a run directory (or a bare trace); every rule is a pure function
of it. Nothing here is computed on first use: what several rules need (line times, sync
waits, the launches' GPU work, the loader call, the profiler's calibration) is a field,
computed by its own module (trace/line_times.py, trace/syncs.py, trace/launches.py,
source/patterns.py, estimate/calibration.py, estimate/producer.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .estimate.calibration import Calibration
from .estimate.producer import Producer
from .estimate.timeline import Timeline
from .source import CallSite, SourceIndex
from .source.patterns import function_body
from .trace.comm import CrossRank, RankComm
from .trace.launches import Launches
from .trace.line_times import LineTimes
from .trace.measures import Steps
from .trace.model import Trace
from .trace.syncs import SyncWaits


@dataclass(frozen=True, eq=False)
class Run:
    trace: Trace  # the columns of one rank's trace
    steps: Steps  # its recorded steady steps
    info: dict  # run.json as read ({} for a bare trace), with the steady unprofiled step
    # absolute path of the file the rules read: the training loop's (line_times.loop_file), the
    # script that ran unless its loop runs in another file of the project (None: unknown)
    script: str | None
    root: str  # the project's folder: the script's (the trace's, without one); outputs' paths are relative to it
    index: SourceIndex | None  # that file, parsed
    lines: LineTimes | None  # time by source line (None: no line recorder log)
    launches: Launches
    syncs: SyncWaits
    timeline: Timeline  # for the estimate stage; rules state savings, never read it
    calibration: Calibration
    main: np.ndarray  # events of the training thread in the recorded window
    step_us: float  # profiled step at steady state: the slower of the CPU's rate and the GPU's
    unprofiled_us: float | None  # the step timed without the profiler, where the run has it
    gpu_busy_us: float  # per recorded step, time during which any GPU stream ran something
    loader_call: CallSite | None  # the script's DataLoader(...) construction
    logging_lines: frozenset  # lines of the script that log, inside the training loop
    comm: RankComm | None = None  # this rank's collectives (a distributed run)
    ranks: tuple[Run, ...] = ()  # every rank's run in rank order, rank 0 first; () for a single run
    cross_rank: CrossRank | None = None  # who waited for whom, across `ranks`
    producer: Producer | None = None  # the DataLoader's workers, as a producer of batches at a measured pace
    # bf16 over fp32 (gemm, conv) and over TF32 time, timed on the run's device for its own
    # heaviest shapes (precision.json); None: not timed (a CPU run, an older capture)
    precision: dict | None = None
    entry: str | None = None  # the script that ran, where `script` is another file (the loop's)
    # the user's lines making one of the loader's batches, µs each, timed after the trace
    # (capture/loader_lines.py); None: not sampled
    loader_lines: dict | None = None

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def base_step_us(self) -> float:
        """The step the estimates start from: timed without the profiler where the run has
        that time, else the profiled step."""
        return self.unprofiled_us or self.step_us

    @property
    def gpu_busy_share(self) -> float:
        """The GPU's busy share of the step without the profiler (it slows the CPU side,
        hardly the kernels)."""
        step = self.base_step_us
        return min(1.0, self.gpu_busy_us / step) if step > 0 else 0.0

    def unprofiled_ms(self, us: float) -> float:
        """A profiled time per step (µs) in unprofiled milliseconds: scaled by the unprofiled
        step over the profiled one (the profiler stretches a step, never shrinks it)."""
        k = self.base_step_us / self.step_us if self.step_us else 1.0
        return us * min(k, 1.0) / 1000

    def cpu_ms(self, intervals) -> float:
        """The training thread's time in `intervals` (profiled, µs) per step, in unprofiled ms: the
        profiler's cost taken out as the calibration measured it (per event, or line by line).
        Every time a message states is in these terms, as the step time is."""
        cal = self.calibration
        return sum(cal.cpu_us(a, b) for a, b in intervals) / max(self.n_steps, 1) / 1000

    def script_line(self, i: int) -> int | None:
        """The innermost line of the user's script running when event i started."""
        if self.lines is None or self.script is None:
            return None
        return self.lines.frame_in(i, self.script)

    def per_line(self, indices: Iterable[int]) -> dict[int | None, list[int]]:
        """Group trace events by the script line running when they started (None: unknown)."""
        out: dict = {}
        for i in indices:
            out.setdefault(self.script_line(int(i)), []).append(int(i))
        return out

    def line_time(self, path: str, line: int) -> tuple[list[tuple[float, float]], float]:
        """Intervals (µs) when `path:line` was the innermost user line, and their total per step."""
        iv = self.lines.by_line.get((path, line), []) if self.lines is not None else []
        return iv, sum(b - a for a, b in iv) / max(self.n_steps, 1)

    def ran(self, line: int) -> bool | None:
        """Whether the script's `line` ran in this run -- the one definition of code that ran.
        A loop line: whether it ran in the recorded steps. Elsewhere, where the capture logged
        which lines ran (capture/coverage.py): whether it did, unknown inside code left untraced
        or a function never called in this process (a Dataset's __getitem__ runs in the
        workers). None where that cannot be told (no line log, an older capture)."""
        if self.lines is None or self.script is None or self.index is None:
            return None
        key, cov = (self.script, line), self.lines.covered
        if key in self.lines.ran or (cov is not None and key in cov.lines):
            return True
        if self.index.in_loop(line):
            return False
        if cov is None or any(p == self.script and a <= line <= b for p, a, b in cov.partial):
            return None
        body = function_body(self.index, line)
        if body is not None and not any((self.script, n) in cov.lines for n in range(body[0], body[1] + 1)):
            return None
        return False

    def relpath(self, path: str | None = None) -> str:
        p = path or self.script or self.trace.path
        try:
            r = os.path.relpath(p)
            return p if r.startswith("..") else r
        except ValueError:
            return p
