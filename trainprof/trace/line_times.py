"""Time by source line: which user frame held the training thread at every event, and how
long each line held it per recorded step (profiled, and in the unprofiled steps' line log)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .lines import LineMap
from .measures import Steps
from .model import Trace


@dataclass(frozen=True)
class Covered:
    """The lines that ran in the run (capture/coverage.py): the whole run up to the trace, or its
    setup only; code left untraced (its lines unknown)."""

    whole: bool
    lines: frozenset  # (path, line)
    partial: tuple = ()  # (path, first line, last line)


@dataclass(frozen=True, eq=False)
class LineTimes:
    map: LineMap
    stack_ids: np.ndarray  # the user stack running at each trace event's start (-1: unknown)
    spans: list[tuple[float, float, int]]  # the training thread's time in the window: (start µs, end µs, stack id)
    by_line: dict  # (path, line) of the innermost user frame -> the intervals (µs) it held, in order
    per_step: dict  # (path, line) of the innermost user frame -> its µs per recorded step
    unprofiled: dict | None  # (path, line) -> µs per step in the unprofiled steps' line log
    ran: frozenset  # (path, line) of every user frame on the stack at some moment of the window
    covered: Covered | None = None  # the lines that ran at all (None: an older capture)

    def innermost(self, i: int) -> tuple[str, int] | None:
        """(path, line) of the innermost user frame when event i started."""
        return self.map.innermost(int(self.stack_ids[i]))

    def frame_in(self, i: int, path: str, lines: range | None = None) -> int | None:
        """The innermost line of `path` on the stack when event i started."""
        return self.map.frame_in(int(self.stack_ids[i]), path, lines)


def covered(doc: dict) -> Covered | None:
    """lines.json's coverage, its file indices as paths (those of doc["files"])."""
    cov, files = doc.get("covered"), doc.get("files") or []
    if not cov:
        return None
    return Covered(bool(cov.get("whole")), frozenset((files[f], ln) for f, ln in cov.get("lines") or []),
                   tuple((files[f], a, b) for f, a, b in cov.get("partial") or []))


def line_times(lm: LineMap, trace: Trace, st: Steps, unprofiled: dict | None, cov: Covered | None = None) -> LineTimes:
    lo, hi = st.window
    t = (lm.times + lm.offset_ns) / 1000.0
    spans = []
    for k in range(len(t)):
        a = max(t[k], lo)
        b = min(t[k + 1] if k + 1 < len(t) else hi, hi)
        if b > a:
            spans.append((a, b, int(lm.ids[k])))
    by_line: dict = {}
    for a, b, sid in spans:
        by_line.setdefault(lm.innermost(sid), []).append((a, b))
    n = max(len(st), 1)
    per_step = {key: sum(b - a for a, b in iv) / n for key, iv in by_line.items()}
    ran = frozenset((lm.files[f], line) for sid in {s for _, _, s in spans} if sid >= 0
                    for f, line in lm.stacks[sid])
    return LineTimes(lm, lm.stack_at(trace.ts), spans, by_line, per_step, unprofiled, ran, cov)


LOOP_SHARE = 0.9  # a frame on the stack this share of the recorded time holds the training loop


def loop_file(lt: LineTimes) -> str | None:
    """The file of the training loop: the deepest user frame that stays on the stack through
    (nearly) all of the recorded steps -- the function looping over them. Deeper frames come
    and go (a forward, a helper); the loop's stays. None where no frame stays."""
    total = sum(b - a for a, b, _ in lt.spans)
    if total <= 0:
        return None
    held: dict = {}  # (depth, file index) -> time on the stack at that depth
    for a, b, sid in lt.spans:
        if sid < 0:
            continue
        for depth, (f, _line) in enumerate(lt.map.stacks[sid]):
            held[(depth, f)] = held.get((depth, f), 0.0) + (b - a)
    stay = [k for k, t in held.items() if t >= LOOP_SHARE * total]
    return lt.map.files[max(stay)[1]] if stay else None
