"""Which lines of the user's code ran: a static finding at a line that never ran (an `if ddp:`
branch not taken) is no cost of this run.

Python 3.12+: sys.monitoring's LINE events, each line's location disabled once seen, so the
whole run up to the trace costs one callback per line of code. Before 3.12: sys.settrace over
the setup only (the script's start to its first training step; the recorded steps' line log
covers the loop), in user frames only, a code object left untraced past LINE_BUDGET line events
(a Python loop building a dataset would otherwise slow the setup tenfold): its lines are then
unknown, not "not run". Forked DataLoader workers stop tracing at once.
"""

from __future__ import annotations

import os
import sys

from .recorder import use_tool

LINE_BUDGET = 20_000


class Coverage:
    def __init__(self, fidx):
        """fidx: code object -> the user's file index, or -1 (the line recorder's file table)."""
        self._fidx = fidx
        self.seen: set[tuple[int, int]] = set()  # (file index, line)
        self.partial: set[tuple[int, int, int]] = set()  # (file index, first line, last line) left untraced
        self.whole = sys.version_info >= (3, 12)  # the whole run, not only its setup
        self._tool = None
        self._count: dict = {}
        self.active = False

    def start(self) -> None:
        self.active = True
        if self.whole:
            mon = sys.monitoring
            self._tool = use_tool("trainprof-coverage")
            if self._tool is None:
                self.active = False
                return
            seen, fidx, DISABLE = self.seen, self._fidx, mon.DISABLE

            def on_line(code, line):
                fi = fidx(code)
                if fi >= 0:
                    seen.add((fi, line))
                return DISABLE

            mon.register_callback(self._tool, mon.events.LINE, on_line)
            mon.set_events(self._tool, mon.events.LINE)
            return
        seen, fidx, count, partial = self.seen, self._fidx, self._count, self.partial

        def local(frame, event, arg):
            if event == "line":
                code = frame.f_code
                n = count[code] = count.get(code, 0) + 1
                if n > LINE_BUDGET:
                    frame.f_trace_lines = False
                    last = max((ln for _, _, ln in code.co_lines() if ln), default=code.co_firstlineno)
                    partial.add((fidx(code), code.co_firstlineno, last))
                    return None
                seen.add((fidx(code), frame.f_lineno))
            return local

        def global_(frame, event, arg):
            if event != "call" or fidx(frame.f_code) < 0 or count.get(frame.f_code, 0) > LINE_BUDGET:
                return None
            return local

        os.register_at_fork(after_in_child=self._forked)
        sys.settrace(global_)

    def _forked(self) -> None:
        if self.active and not self.whole:
            sys.settrace(None)
            self.active = False

    def end_setup(self) -> None:
        """At the first training step: before 3.12, tracing stops (its cost would fall on every step)."""
        if self.whole or not self.active:
            return
        sys.settrace(None)
        fr = sys._getframe(1)
        while fr is not None:  # frames already traced keep their own hook
            fr.f_trace = None
            fr = fr.f_back
        self.active = False

    def stop(self) -> None:
        if self._tool is not None:
            mon = sys.monitoring
            mon.set_events(self._tool, 0)
            mon.register_callback(self._tool, mon.events.LINE, None)
            mon.free_tool_id(self._tool)
            self._tool = None
        self.end_setup()
        self.active = False

    def to_json(self) -> dict:
        return {"whole": self.whole, "lines": sorted(self.seen), "partial": sorted(self.partial)}
