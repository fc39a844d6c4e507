"""Steady state, found rather than assumed (../shared/measuring.md).

A step time is throughput: the time of a window of steps over their number, the device synced
at the window's edges only. The first steps are not the run's: start-up (allocator growth,
autotuning, compilation) makes them slow, and while it does a DataLoader's workers fill its
prefetch queue, so the steps after it run on batches made earlier and look fast until the queue
has drained (prefetch_factor x num_workers batches). Steady state is reached when two
consecutive windows agree, no step of theirs could still be served from a queue filled during a
slow step (at least the queue's size in steps since the last, and no fewer batches ready at the
end than at the start), and neither holds an outlier (a step many times its window's median) -- unless the
outliers come back at a fixed period (an evaluation or a checkpoint every N steps): those are the
run's own, left out of the step time and reported with their period and amortised cost. A time
budget bounds the search.

Pure: the caller (stepper.py in the child) feeds windows of step times; nothing here touches
torch or the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WINDOW_S = 0.2  # a window lasts about this long (at least MIN_WINDOW steps)
MIN_WINDOW, MAX_WINDOW = 4, 100
AGREE = 0.10  # two windows agree when their step times differ by at most this share
SLOW = 2.0  # a step this many times its window's mean is slow: a loader's queue refills meanwhile
OUTLIER = 4.0  # a step this many times the median of its window is an outlier (a checkpoint, an eval)


@dataclass(frozen=True)
class Window:
    first: int  # the step it starts at (steps counted from the first, 0)
    steps: int
    seconds: float  # wall time, synced at both edges
    step_s: tuple[float, ...]  # each step's own length, unsynced (the spread; not the throughput)
    cpu_s: float = 0.0  # the training process's CPU time over the window (all its threads)
    level: int | None = None  # batches ready in the DataLoaders' queues at its end (None: not known)
    step_wait: tuple[float, ...] = ()  # the training thread's time in DataLoaders' __next__, step by step

    @property
    def per_step(self) -> float:
        return self.seconds / self.steps

    @property
    def end(self) -> int:
        return self.first + self.steps


def window_size(step_s: float, window_s: float = WINDOW_S) -> int:
    """Steps in a window, from one step's length: about window_s of them."""
    if not step_s > 0:
        return MIN_WINDOW
    top = MAX_WINDOW * max(1.0, window_s / WINDOW_S)
    return int(min(top, max(MIN_WINDOW, math.ceil(window_s / step_s))))


def percentile(values, q: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    x = (len(v) - 1) * q
    lo = int(math.floor(x))
    return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (x - lo)


def outliers(w: Window) -> list[int]:
    """Steps of w (their numbers) much longer than its median."""
    med = percentile(w.step_s, 0.5)
    return [w.first + i for i, s in enumerate(w.step_s) if med > 0 and s > OUTLIER * med]


def period(spikes: list[int]) -> int | None:
    """The fixed distance between the spikes, if they recur at one (within a step: a spike can
    land on either side of a step boundary); None for fewer than two gaps or irregular ones."""
    # a spike that spans a step boundary, or a few slow steps together (a loader starting its
    # workers again each epoch), is one: consecutive steps count once, at the first
    spikes = [r[0] for r in _runs(spikes)]
    gaps = [b - a for a, b in zip(spikes, spikes[1:])]
    if len(gaps) < 2 or min(gaps) < 2:
        return None
    return round(sum(gaps) / len(gaps)) if max(gaps) - min(gaps) <= 2 else None


def trimmed(w: Window, skip: set[int]) -> float:
    """The window's step time without the steps in skip (seconds per step)."""
    out = [i for i in range(len(w.step_s)) if w.first + i in skip]
    if not out or len(out) >= w.steps:
        return w.per_step
    return (w.seconds - sum(w.step_s[i] for i in out)) / (w.steps - len(out))


@dataclass
class Settle:
    """Feeds on windows; says when the run is steady, and on what."""

    min_steps: int = 5  # at least this many steps before steady state can be declared
    budget_s: float = 60.0
    window_s: float = WINDOW_S  # a window's length, about
    quantum: int = 1  # windows hold a multiple of this many steps: a loader's workers deliver in bursts of theirs
    windows: list[Window] = field(default_factory=list)
    slow: list[int] = field(default_factory=list)  # slow steps seen (a queue may refill during them)
    spikes: list[int] = field(default_factory=list)  # outliers seen, after the first window
    restart: int = 0  # the last step a loader started a new pass at (its workers refill the queue)
    spent_s: float = 0.0
    reached: bool = False

    def next_size(self, first_step_s: float) -> int:
        """Steps in the next window: about WINDOW_S at the pace of the last one, in whole bursts."""
        n = window_size(self.windows[-1].per_step if self.windows else first_step_s, self.window_s)
        q = max(self.quantum, 1)
        return max(q, -(-n // q) * q)

    def see_loaders(self, loaders) -> int:
        """Take in the DataLoaders being iterated (their configurations as probes.watch_loaders
        records them): the last step one (re)started its workers at (they refill its queue then:
        as slow a moment as any) and the bursts their workers deliver in; return the batches
        their queues can hold (add()'s queued)."""
        loaders = list(loaders)
        self.restart = max([ld.get("last_iter") or 0 for ld in loaders] + [0])
        self.quantum = max([ld["num_workers"] or 1 for ld in loaders] + [1])
        return sum((ld["num_workers"] or 0) * (ld["prefetch_factor"] or 0) for ld in loaders)

    def add(self, w: Window, queued: int = 0) -> bool:
        """Take the next window; True once steady. queued: batches the DataLoaders being
        iterated can hold ahead (prefetch_factor x num_workers of each)."""
        self.windows.append(w)
        self.spent_s += w.seconds
        if len(w.step_s) > 1:
            self.slow += [w.first + i for i, s in enumerate(w.step_s) if s > SLOW * w.per_step]
        if len(self.windows) > 1:  # the first window is start-up itself
            self.spikes += outliers(w)
        self.reached = self.steady(queued)
        return self.reached

    @property
    def bursts(self) -> bool:
        """The spikes are a loader's: batches arriving in bursts, every few steps (at most twice
        its workers), part of the pace -- or, with a multi-worker loader, spikes in each of the
        last windows, several in each (its workers drift apart: the gaps vary)."""
        p = period(self.spikes)
        if p is not None and p <= 2 * max(self.quantum, 2):
            return True
        last = self.windows[-2:]
        return self.quantum > 1 and len(last) == 2 and all(len(outliers(w)) >= 2 for w in last)

    @property
    def periodic(self) -> int | None:
        """The period of recurring spikes that are not a loader's bursts (an eval, a checkpoint)."""
        return None if self.bursts else period(self.spikes)

    def _recurring(self) -> set[int]:
        return set(self.spikes) if self.periodic else set()

    def steady(self, queued: int = 0) -> bool:
        if len(self.windows) < 2:
            return False
        a, b = self.windows[-2], self.windows[-1]
        skip = self._recurring()
        odd = set() if self.bursts else set(outliers(a) + outliers(b)) - skip
        if b.end < self.min_steps or odd:
            return False
        before = self.windows[-3] if len(self.windows) > 2 else None
        if a.level is not None and b.level is not None:
            # the queue's level is known: not steady while it drains (batches taken faster than made)
            # (a full queue, less a burst, is a loader ahead of the step: its level says nothing)
            start = before.level if before is not None and before.level is not None else a.level
            if start - b.level > 1 and b.level < queued - self.quantum:
                return False
        elif queued:
            # a step served from a queue filled while the run was slow: not yet the loader's pace
            # (a loader's bursts are slow steps that fill nothing: then only start-up counts)
            slow = [s for s in self.slow if s < self.windows[0].end] if self.bursts else self.slow
            last_slow = max([s for s in slow if s not in skip] + [self.restart, 0])
            if a.first < last_slow + 1 + queued:
                return False
        ta, tb = trimmed(a, skip), trimmed(b, skip)
        t0 = trimmed(before, skip) if before is not None else None
        if t0 is not None and (t0 > ta > tb or t0 < ta < tb) and abs(t0 - tb) > AGREE * min(t0, tb):
            return False  # still changing, window by window: a transient wearing off, a leak growing
        return abs(ta - tb) <= AGREE * min(ta, tb)

    @property
    def over_budget(self) -> bool:
        return self.spent_s >= self.budget_s

    def result(self) -> dict:
        """What run.json keeps of the search: the steady step (throughput over the last two
        windows, recurring spikes left out), whether it was reached, the spread of the steps
        in them, and the spikes."""
        last = self.windows[-2:]
        skip = self._recurring()
        steps = sum(w.steps for w in last)
        kept = [(w, sum(1 for i in range(w.steps) if w.first + i in skip)) for w in last]
        n = sum(w.steps - k for w, k in kept)
        step_s = sum(trimmed(w, skip) * (w.steps - k) for w, k in kept) / n if n else None
        per = [s for w in last for i, s in enumerate(w.step_s) if w.first + i not in skip]
        spike_ms = [1000 * s for w in self.windows for i, s in enumerate(w.step_s) if w.first + i in skip]
        cpu = sum(w.cpu_s for w in last)
        # the steady step's wait: the recurring spikes' own waits (a loader restarting its
        # workers each epoch) left out, as their time is
        wait = sum(x for w in last for i, x in enumerate(w.step_wait) if w.first + i not in skip)
        wait_ms = 1000 * wait / n if n else None
        return {
            "loader_wait_ms": wait_ms,
            "reached": self.reached,
            "step_ms": 1000 * step_s if step_s else None,
            "cpu_ms": 1000 * cpu / steps if steps and cpu else None,
            "steps": self.windows[-1].end if self.windows else 0,
            "seconds": round(self.spent_s, 3),
            "windows_ms": [round(1000 * w.per_step, 4) for w in self.windows],
            "window_steps": [w.steps for w in self.windows],
            "p10_ms": 1000 * percentile(per, 0.1) if per else None,
            "p50_ms": 1000 * percentile(per, 0.5) if per else None,
            "p90_ms": 1000 * percentile(per, 0.9) if per else None,
            "outliers": [] if self.bursts else sorted({k for w in self.windows[1:] for k in outliers(w)}),
            "period": self.periodic,
            "spike_ms": percentile(spike_ms, 0.5) if spike_ms else None,
            "spike_steps": sorted(skip)[-8:],
        }

    def clear_of_spikes(self, k: int, length: int) -> int:
        """Steps to wait from step k so that the next `length` steps hold none of the run's
        periodic spikes (0: none due; a window longer than the period cannot avoid them)."""
        p = self.periodic
        if not p or not self.spikes or length >= p:
            return 0
        nxt = self.spikes[-1] + -(-(k - self.spikes[-1]) // p) * p  # the next spike at or after k
        return 0 if k + length <= nxt else nxt + 1 - k


@dataclass
class SpikeWatch:
    """After the trace: unprofiled steps watched for spikes at a fixed period that the search for
    steady state ended too soon to see twice (an evaluation every few hundred steps), within a
    time budget. Fed each step's length (unsynced: a spike that syncs shows whole)."""

    budget_s: float
    steps: list[float] = field(default_factory=list)
    spikes: list[int] = field(default_factory=list)
    spent_s: float = 0.0

    def add(self, step_s: float) -> bool:
        """Take the next step; True once the watch is over (a period found, or the budget spent)."""
        self.steps.append(step_s)
        self.spent_s += step_s
        recent = self.steps[-101:-1]
        if len(recent) >= MIN_WINDOW and step_s > OUTLIER * percentile(recent, 0.5):
            self.spikes.append(len(self.steps) - 1)
        return self.period is not None and len(_runs(self.spikes)) >= 3 or self.spent_s >= self.budget_s

    @property
    def period(self) -> int | None:
        return period(self.spikes)

    def result(self) -> dict:
        skip = set(self.spikes)
        calm = [s for i, s in enumerate(self.steps) if i not in skip]
        # a spike of several slow steps in a row: their time together, less the calm steps' share
        runs = [sum(self.steps[i] for i in r) for r in _runs(self.spikes)]
        calm_s = sum(calm) / len(calm) if calm else 0.0
        extra = [t - (len(r) - 1) * calm_s for t, r in zip(runs, _runs(self.spikes))]
        return {"period": self.period, "watched_s": round(self.spent_s, 3), "watched_steps": len(self.steps),
                "spike_ms": 1000 * percentile(extra, 0.5) if extra else None,
                "calm_ms": 1000 * calm_s if calm else None}


def _runs(spikes: list[int]) -> list[list[int]]:
    """Spike steps grouped into runs of consecutive steps."""
    out: list[list[int]] = []
    for s in spikes:
        if out and s - out[-1][-1] == 1:
            out[-1].append(s)
        else:
            out.append([s])
    return out
