"""The progress line shown while the script starts, waits, warms up and records."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

PHASES = {
    "launch": "starting the script",
    "starting": "script starting (waiting for its first optimizer step)",
    "wait": "timing unprofiled steps",
    "warmup": "profiler warming up",
    "active": "recording",
    "writing": "writing the trace",
    "post": "timing unprofiled steps after the trace",
    "analyzing": "analyzing",
    "reading": "reading the trace",  # streamed: pieces decode as it reads
    "decoding": "decoding the trace",
    "building": "indexing the events",
    "rules": "running the rules",
    "estimating": "estimating (what-if replays)",
}


def elapsed(s: float) -> str:
    s = int(s)
    return f"{s} s" if s < 60 else f"{s // 60} min {s % 60:02d} s"


def status(phase: str, step: int, total: int, seconds: float) -> str:
    """The status line: the phase, the steps timed or recorded so far, the time since start."""
    label = PHASES.get(phase, phase)
    if phase == "reading":
        detail = f" {step:.0f}/{total:.0f} MB"
    elif phase == "rules":
        detail = f" {step}/{total}"
    elif total:
        detail = f": step {step} of {total}"
    elif step:  # the search for steady state: the steps it takes are not known yet
        detail = f": step {step}" + (", looking for steady state" if phase == "wait" else "")
    else:
        detail = ""
    return f"{label}{detail}  [{elapsed(seconds)}]"


class Progress:
    """A live status line on stderr where it is a terminal; nothing where it is not (a pipe, a
    file, CI). Its clock runs between messages (a slow step still shows time passing)."""

    def __init__(self, enabled: bool = True, console: Console | None = None):
        self.console = console or Console(stderr=True)
        # the file itself a terminal (not rich's guess, which FORCE_COLOR sways: a CI log stays clean)
        isatty = getattr(self.console.file, "isatty", None)
        self.enabled = bool(enabled and isatty and isatty())
        self.t0 = time.monotonic()
        self._live = None
        self._spinner = Spinner("dots", text="starting the script")
        self._state = ("launch", 0, 0)

    def __rich__(self):
        self._spinner.update(text=Text(status(*self._state, time.monotonic() - self.t0)))
        return self._spinner

    def __enter__(self):
        if self.enabled:
            self._live = Live(self, console=self.console, transient=True, refresh_per_second=10)
            self._live.__enter__()
        return self

    def update(self, phase: str, step: int, total: int) -> None:
        self._state = (phase, step, total)

    def __exit__(self, *exc):
        if self._live:
            self._live.__exit__(*exc)
        return False
