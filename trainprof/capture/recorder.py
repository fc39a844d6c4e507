"""Record which line of the user's code runs when, during the recorded steps only.

The profiler's python frames name each function's *definition* line, so two
`.item()` calls in `main()` look the same there. This recorder logs, for frames
of the user's own files only, when a frame starts, which line it is on, and when
it returns. The analysis rebuilds the user stack at any instant from that log
and aligns it with the trace through anchors taken around `prof.step()`.

Python 3.12+: sys.monitoring; callbacks return DISABLE for code outside the user's
files, so library code costs one callback per location, once. Before 3.12:
sys.settrace with a global function that declines every frame outside the user's
files, so only user frames get line events.
"""

from __future__ import annotations

import os
import sys
import time

from .roots import Roots

START, LINE, RETURN = 0, 1, 2
_clock = time.perf_counter_ns


def use_tool(name: str) -> int | None:
    """A free sys.monitoring tool id (Python 3.12+), taken; None where all are taken. Ids 0 and 1
    are the debugger's and coverage tools' by convention."""
    for tool in (5, 4, 3, 2):
        try:
            sys.monitoring.use_tool_id(tool, name)
            return tool
        except ValueError:
            continue
    return None


class LineRecorder:
    def __init__(self, user_files: list[str], roots: Roots | None = None, share: LineRecorder | None = None):
        """user_files: the script first (index 0), then any known beforehand; roots: which
        other files are the user's, found as their code first runs; share: a recorder whose
        file table this one uses (the unprofiled steps' log and the profiled one index alike)."""
        if share is not None:
            self._files, self._file_idx, self._code_file = share._files, share._file_idx, share._code_file
            self._roots = share._roots
        else:
            self._files = [os.path.realpath(f) for f in user_files]
            self._file_idx = {f: i for i, f in enumerate(self._files)}
            self._code_file: dict = {}  # code object -> file index or -1
            self._roots = roots
        self.events: list[tuple[int, int, int, int, int]] = []  # (t, kind, code_key, file, line)
        self.initial_stack: list[tuple[int, int, int]] = []  # outermost first: (code_key, file, line)
        self._tool = None
        self.active = False

    # -- which code is the user's --------------------------------------------------
    def file_of(self, code) -> int:
        """The file index of a code object in this recorder's table, or -1: not the user's (a
        file of the roots is added as its code first runs)."""
        f = self._code_file.get(code)
        if f is None:
            path = os.path.realpath(code.co_filename)
            f = self._file_idx.get(path, -1)
            if f < 0 and self._roots is not None and not code.co_filename.startswith("<") \
                    and self._roots.is_user(path) and os.path.isfile(path):
                f = self._file_idx[path] = len(self._files)
                self._files.append(path)
            self._code_file[code] = f
        return f

    def _snapshot_stack(self) -> None:
        frames = []
        fr = sys._getframe(2)
        while fr is not None:
            fi = self.file_of(fr.f_code)
            if fi >= 0:
                frames.append((id(fr.f_code), fi, fr.f_lineno, fr))
            fr = fr.f_back
        frames.reverse()
        self.initial_stack = [(c, fi, ln) for c, fi, ln, _ in frames]
        self._live_frames = [f for *_, f in frames]

    # -- start / stop ---------------------------------------------------------------
    def start(self) -> None:
        self._snapshot_stack()
        self.active = True
        if sys.version_info >= (3, 12):
            self._start_monitoring()
        else:
            self._start_settrace()
        self._live_frames = []

    def stop(self) -> None:
        if not self.active:
            return
        self.active = False
        if self._tool is not None:
            mon = sys.monitoring
            mon.set_events(self._tool, 0)
            for ev in (mon.events.PY_START, mon.events.PY_RESUME, mon.events.PY_RETURN,
                       mon.events.PY_YIELD, mon.events.LINE):
                mon.register_callback(self._tool, ev, None)
            mon.free_tool_id(self._tool)
            self._tool = None
        else:
            sys.settrace(None)
            for fr in getattr(self, "_traced_frames", []):
                fr.f_trace = None

    # -- Python 3.12+ ---------------------------------------------------------------
    def _start_monitoring(self) -> None:
        mon = sys.monitoring
        self._tool = use_tool("trainprof")
        if self._tool is None:
            return  # every tool id taken: no line attribution, the analysis says so
        ev = self.events
        fidx = self.file_of
        DISABLE = mon.DISABLE

        def on_start(code, offset):
            fi = fidx(code)
            if fi < 0:
                return DISABLE
            ev.append((_clock(), START, id(code), fi, code.co_firstlineno))

        def on_return(code, offset, retval):
            fi = fidx(code)
            if fi < 0:
                return DISABLE
            ev.append((_clock(), RETURN, id(code), fi, 0))

        def on_line(code, line):
            fi = fidx(code)
            if fi < 0:
                return DISABLE
            ev.append((_clock(), LINE, id(code), fi, line))

        E = mon.events
        mon.register_callback(self._tool, E.PY_START, on_start)
        mon.register_callback(self._tool, E.PY_RESUME, on_start)
        mon.register_callback(self._tool, E.PY_RETURN, on_return)
        mon.register_callback(self._tool, E.PY_YIELD, on_return)
        mon.register_callback(self._tool, E.LINE, on_line)
        mon.set_events(self._tool, E.PY_START | E.PY_RESUME | E.PY_RETURN | E.PY_YIELD | E.LINE)

    # -- before 3.12 ----------------------------------------------------------------
    def _start_settrace(self) -> None:
        ev = self.events
        fidx = self.file_of

        def local(frame, event, arg):
            if event == "line":
                ev.append((_clock(), LINE, id(frame.f_code), fidx(frame.f_code), frame.f_lineno))
            elif event == "return":
                ev.append((_clock(), RETURN, id(frame.f_code), fidx(frame.f_code), 0))
            return local

        def global_(frame, event, arg):
            if event != "call":
                return None
            fi = fidx(frame.f_code)
            if fi < 0:
                return None
            ev.append((_clock(), START, id(frame.f_code), fi, frame.f_code.co_firstlineno))
            return local

        # Frames already running (the training loop itself) need their own hook.
        self._traced_frames = []
        for fr in self._live_frames:
            fr.f_trace = local
            fr.f_trace_lines = True
            self._traced_frames.append(fr)
        sys.settrace(global_)

    def to_json(self) -> dict:
        return {
            "clock": "perf_counter_ns",
            "files": self._files,
            "initial_stack": self.initial_stack,
            "events": self.events,
        }
