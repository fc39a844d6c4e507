"""The progress line shown while the script starts, waits, warms up and records."""

from __future__ import annotations

import sys
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


class Progress:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self.t0 = time.monotonic()
        self._live = None
        self._spinner = Spinner("dots", text="starting the script")

    def __enter__(self):
        if self.enabled:
            self._live = Live(self._spinner, console=Console(stderr=True), transient=True, refresh_per_second=10)
            self._live.__enter__()
        return self

    def update(self, phase: str, step: int, total: int) -> None:
        if not self._live:
            return
        label = PHASES.get(phase, phase)
        if phase == "reading":
            steps = f" {step:.0f}/{total:.0f} MB"
        elif phase == "rules":
            steps = f" {step}/{total}"
        else:
            steps = f" step {step}/{total}" if total else ""
        self._spinner.update(text=Text(f"{label}{steps}  [{time.monotonic() - self.t0:.0f} s]"))

    def __exit__(self, *exc):
        if self._live:
            self._live.__exit__(*exc)
        return False
