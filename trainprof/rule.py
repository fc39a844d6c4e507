"""What a rule is, and the context its detector reads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterable

import numpy as np

from .finding import Finding
from .source import SourceIndex
from .source import patterns as P
from .trace import measures as M
from .trace.lines import LineMap
from .trace.model import Trace

CATEGORIES = ("sync", "copy", "memory", "logging", "data", "gpu", "compute", "io", "distributed")


@dataclass(frozen=True)
class Rule:
    id: str  # kebab-case, named for the pattern it flags
    title: str
    category: str
    detect: Callable[["Context"], Iterable[Finding]]
    doc: str  # What it does / Why it is slow / Example / Use instead / When not to fix
    needs: tuple[str, ...] = ()  # "trace", "cuda", "lines", "source", "memory", "ranks"
    codemods: tuple = ()  # trainprof.fix.codemod.Codemod: the fixes `trainprof apply` can make
    # Static detection (`trainprof lint`, no run): (SourceIndex) -> findings, unmeasured.
    lint: Callable[[SourceIndex], Iterable[Finding]] | None = None
    # Narrower ids this rule covers (`--select` and `trainprof rules` take them too)
    aliases: tuple[str, ...] = ()

    @property
    def fix_safety(self) -> str | None:
        """safe / unsafe (the least safe of its codemods) / None: advice only."""
        kinds = {c.safety for c in self.codemods}
        return "unsafe" if "unsafe" in kinds else "safe" if kinds else None


@dataclass(eq=False)
class Context:
    """What a detector may read. Measures are computed once, on first use."""

    trace: Trace
    steps: M.Steps
    run: dict
    index: SourceIndex | None
    lines: LineMap | None
    script: str | None
    unprofiled_lines: dict | None = None  # (path, line) -> µs per step in unprofiled steps
    # A distributed run: every rank's context in rank order, this one (rank 0) first; () otherwise
    ranks: tuple = ()

    def unprofiled_ms(self, us: float) -> float:
        """A profiled time per step (µs) in unprofiled milliseconds: scaled by the unprofiled
        step over the profiled one (the profiler stretches a step, never shrinks it)."""
        k = self.base_step_us / self.step_us if self.step_us else 1.0
        return us * min(k, 1.0) / 1000

    def line_excess(self, rank: int, unprofiled: bool = False) -> list[tuple[float, tuple[str, int], float]]:
        """The script's lines that take longer on `rank` than on the other ranks: (µs per step
        more than their median, (path, line), µs per step on `rank`), largest first. With
        `unprofiled`, from each rank's unprofiled line log: the profiler cannot have made the
        difference there."""
        if len(self.ranks) < 2:
            return []
        per = []
        for r in self.ranks:
            if unprofiled:
                per.append(r.unprofiled_lines)
            else:
                per.append(r.line_us if r.lines is not None else None)
        if per[rank] is None:
            return []
        out = []
        for key, t in per[rank].items():
            if key is None or key[0] != self.script:
                continue
            others = [p.get(key, 0.0) for i, p in enumerate(per) if i != rank and p is not None]
            if others:
                out.append((t - float(np.median(others)), key, t))
        return sorted(out, reverse=True)

    @cached_property
    def comm(self):
        """This rank's collectives (trace/comm.py)."""
        from .trace.comm import rank_comm

        return rank_comm(self.trace, self.steps)

    @cached_property
    def cross_rank(self):
        """Who waited for whom at the collectives, across ctx.ranks (None: a single run)."""
        from .trace.comm import cross_rank

        return cross_rank([r.comm for r in self.ranks]) if len(self.ranks) > 1 else None

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @cached_property
    def main(self) -> np.ndarray:
        lo, hi = self.steps.window
        return M.on_thread(self.trace, self.steps) & M.in_window(self.trace, lo, hi)

    @cached_property
    def step_us(self) -> float:
        """Profiled step time at steady state: the slower of the training thread's
        rate and the GPU's (the CPU can run steps ahead of the GPU)."""
        from .estimate.replay import replay

        if self.trace.has_cuda:
            return replay(self.timeline).step_us
        return float(np.mean(self.steps.dur))

    @cached_property
    def gpu_busy_us(self) -> float:
        """Time per recorded step during which any GPU stream ran something."""
        lo, hi = self.steps.window
        return M.gpu_busy(self.trace, lo, hi) / max(self.n_steps, 1)

    @cached_property
    def base_step_us(self) -> float:
        """The step the estimates start from: timed without the profiler where the run has
        that time, else the profiled step."""
        return self.unprofiled_us or self.step_us

    @cached_property
    def gpu_busy_share(self) -> float:
        """The GPU's busy share of the step without the profiler: its busy time over the
        unprofiled step (the profiler slows the CPU side, hardly the kernels)."""
        step = self.base_step_us
        return min(1.0, self.gpu_busy_us / step) if step > 0 else 0.0

    @cached_property
    def unprofiled_us(self) -> float | None:
        v = self.run.get("unprofiled_ms")
        return v * 1000.0 if v else None

    @cached_property
    def stack_ids(self) -> np.ndarray:
        """The user stack running at each event's start (-1: unknown)."""
        if self.lines is None:
            return np.full(len(self.trace), -1, np.int64)
        return self.lines.stack_at(self.trace.ts)

    def script_line(self, i: int) -> int | None:
        """The innermost line of the user's script running when event i started."""
        if self.lines is None or self.script is None:
            return None
        return self.lines.frame_in(int(self.stack_ids[i]), self.script)

    def where(self, i: int) -> tuple[str, int] | None:
        """(path, line) of the innermost user frame at event i."""
        if self.lines is None:
            return None
        return self.lines.innermost(int(self.stack_ids[i]))

    @cached_property
    def line_spans(self) -> list[tuple[float, float, int]]:
        """Main-thread time as (start µs, end µs, stack id) in the recorded window."""
        if self.lines is None:
            return []
        lm = self.lines
        lo, hi = self.steps.window
        t = (lm.times + lm.offset_ns) / 1000.0
        out = []
        for k in range(len(t)):
            a = max(t[k], lo)
            b = min(t[k + 1] if k + 1 < len(t) else hi, hi)
            if b > a:
                out.append((a, b, int(lm.ids[k])))
        return out

    @cached_property
    def spans_by_line(self) -> dict:
        """(path, line) of the innermost user frame -> the intervals (µs) it held, in order."""
        out: dict = {}
        for a, b, sid in self.line_spans:
            out.setdefault(self.lines.innermost(sid), []).append((a, b))
        return out

    @cached_property
    def line_us(self) -> dict:
        """(path, line) of the innermost user frame -> its time per recorded step (µs)."""
        n = max(self.n_steps, 1)
        return {key: sum(b - a for a, b in iv) / n for key, iv in self.spans_by_line.items()}

    def line_time(self, path: str, line: int) -> tuple[list[tuple[float, float]], float]:
        """Intervals (µs) when `path:line` was the innermost user line, and their total per step."""
        iv = self.spans_by_line.get((path, line), [])
        return iv, sum(b - a for a, b in iv) / max(self.n_steps, 1)

    @cached_property
    def logging_lines(self) -> set[int]:
        if self.index is None:
            return set()
        return {c.line for c in self.index.calls if P.is_logging(c) and self.index.in_loop(c.line)}

    @cached_property
    def timeline(self):
        from .estimate.replay import build_timeline

        return build_timeline(self.trace, self.steps)

    @cached_property
    def calibration(self) -> tuple[float, str]:
        """((µs per recorded event, CPU scale), note): the profiler's overhead, calibrated
        against the unprofiled steps."""
        from .estimate.replay import calibrate

        return calibrate(self.timeline, self.unprofiled_us, self.trace.has_cuda, self.warp)

    @cached_property
    def warp(self):
        """Per-line profiler correction, where the step is CPU-bound and the unprofiled
        steps' line log exists (a GPU-bound line's time is mostly waiting: not corrected so)."""
        from .estimate.replay import Warp

        if not self.unprofiled_lines or self.lines is None:
            return None
        lo, hi = self.steps.window
        if self.trace.has_cuda and self.gpu_busy_us * self.n_steps > 0.5 * (hi - lo):
            return None
        prof = self.line_us
        total_u = sum(self.unprofiled_lines.values())
        total_p = sum(v for k, v in prof.items() if k is not None)
        if not total_u or not total_p:
            return None
        default = min(1.5, max(0.05, total_u / total_p))
        factor = {}
        for key, p in prof.items():
            u = self.unprofiled_lines.get(key)
            if key is not None and u is not None and p >= 20.0:
                factor[key] = min(1.5, max(0.05, u / p))
        return Warp(lo, hi, [(a, b, factor.get(k, default)) for k, iv in self.spans_by_line.items() for a, b in iv],
                    default)

    def unprofiled_cpu(self, a: float, b: float) -> float:
        """What the training thread's time [a, b) would be without the profiler."""
        return self.timeline.unprofiled(a, b, self.calibration[0], self.warp)

    @cached_property
    def syncs(self) -> list:
        return M.classify_syncs(self.trace, self.steps)

    @cached_property
    def sync_waits(self) -> dict:
        """Script line (None: unknown) -> (sync events there, ms blocked per step, the GPU
        copies they waited for): the device->host reads and explicit syncs of the loop,
        less those inside a data-dependent-shape op (`shape_sync_waits`)."""
        return self._waits(lambda s: s.shape_op is None)

    @cached_property
    def shape_sync_waits(self) -> dict:
        """As `sync_waits`, for the syncs inside data-dependent-shape ops (nonzero, unique...)."""
        return self._waits(lambda s: s.shape_op is not None)

    def _waits(self, keep) -> dict:
        events = [s for s in self.syncs if s.kind in ("d2h", "explicit") and keep(s)]
        ev_of = {s.idx: s for s in events}
        out = {}
        for line, idxs in self.per_line(s.idx for s in events).items():
            blocked = sum(float(self.trace.dur[i]) for i in idxs) / self.n_steps / 1000
            out[line] = (idxs, blocked, [g for i in idxs for g in ev_of[i].copy_gpu])
        return out

    @cached_property
    def launch_cost_us(self) -> float:
        """Median CPU time of one kernel launch in this trace."""
        m = M.runtime_mask(self.trace) & self.trace.name_mask(lambda n: "LaunchKernel" in n) & self.main
        return float(np.median(self.trace.dur[m])) if m.any() else 5.0

    def per_line(self, indices) -> dict[int, list[int]]:
        """Group trace events by the script line running when they started (None: unknown)."""
        out: dict = {}
        for i in indices:
            out.setdefault(self.script_line(int(i)), []).append(int(i))
        return out

    def loader_call(self):
        """The DataLoader(...) construction in the script, if one is there."""
        if self.index is None:
            return None
        for c in self.index.calls:
            if (c.qualname or "").endswith("DataLoader") or (c.qualname is None and c.text.startswith("DataLoader(")):
                return c
        return None

    def relpath(self, path: str | None = None) -> str:
        import os

        p = path or self.script or self.trace.path
        try:
            r = os.path.relpath(p)
            return p if r.startswith("..") else r
        except ValueError:
            return p


def static_detect(lint: Callable[[SourceIndex], Iterable[Finding]]) -> Callable[["Context"], Iterable[Finding]]:
    """The detector of a rule that reads only the source: its static findings, in an
    analysis too (unmeasured, so they rank after every measured one)."""
    from dataclasses import replace

    def detect(ctx: "Context") -> Iterable[Finding]:
        if ctx.index is None:
            return
        for f in lint(ctx.index):
            yield replace(f, path=ctx.relpath())

    return detect
