"""Runs inside the child process: the user's script, unmodified, under the profiler.

    python -c "...; from trainprof.capture.child import main; main()" CONFIG.json

(started so by capture/runner.py, which keeps trainprof's own folder off the
user's sys.path). The step marker and the profiler's schedule are stepper.py's;
this module runs the script and reports how it ended.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback

from . import stepper
from .stepper import Capture


def _in_profiler(e: BaseException) -> bool:
    """Whether e was raised inside torch's profiler, called from trainprof's step marker."""
    names = []
    t = e.__traceback__
    while t is not None:
        names.append((t.tb_frame.f_code.co_filename, t.tb_frame.f_code.co_name))
        t = t.tb_next
    ours = [k for k, (f, fn) in enumerate(names) if f == stepper.__file__ and fn in ("mark", "finish", "_start_profiler")]
    return bool(ours) and any("profiler" in f for f, _ in names[ours[-1] + 1:])


def _without_ours(tb: str) -> str:
    """A formatted traceback without trainprof's frames: those of the probes wrapped around the
    DataLoader's fetch show in a worker's traceback, which reaches us as text in the message."""
    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    out, skip = [], False
    for ln in tb.splitlines(keepends=True):
        if ln.lstrip().startswith('File "'):
            skip = ln.lstrip()[6:].startswith(ours)
        elif not ln.startswith("    "):
            skip = False  # past a frame's lines: the exception's own lines
        if not skip:
            out.append(ln)
    return "".join(out)


def _summary(e: BaseException) -> str:
    """The exception in one line, for the first line of trainprof's error (the traceback's tail
    follows it). A DataLoader worker's exception is re-raised in the main process with a message
    of many lines -- "Caught ValueError in DataLoader worker process 0.", "Original Traceback
    (most recent call last):", the worker's frames, "ValueError: corrupt sample 16" -- whose
    first line does not say what went wrong; that one becomes "ValueError in DataLoader worker
    process 0: corrupt sample 16"."""
    try:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    except Exception:  # a broken __str__ of the user's exception
        lines = []
    if not lines:
        return type(e).__name__
    head = lines[0]
    if len(lines) > 2 and head.startswith("Caught ") and lines[1].startswith("Original Traceback"):
        where = head.removeprefix("Caught ").rstrip(".").partition(" ")[2]  # "in DataLoader worker process 0"
        exc, sep, msg = lines[-1].partition(": ")  # the worker's own last line: "ValueError: corrupt sample 16"
        return f"{exc} {where}: {msg[:300]}" if sep else f"{exc} {where}"
    return f"{type(e).__name__}: {head[:300]}" + (" ..." if len(lines) > 1 or len(head) > 300 else "")


def main() -> None:
    if os.environ.get("TRAINPROF_DEBUG"):  # `kill -USR1 <pid>` prints every thread's stack
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    cap = Capture(cfg)
    script = cfg["script"]
    sys.argv = [script] + cfg["args"]
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    try:
        import torch  # noqa: F401
    except ImportError as e:
        cap.send(event="error", kind="no-torch", message=f"cannot import torch: {e}")
        os._exit(3)
    cap.install()
    cap.send(event="hello", pid=os.getpid(), world=cap.world)
    cap.send(event="phase", phase="starting", step=0, total=cap.total)
    status = 0
    cap.coverage.start()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # the user's script raised: report its traceback's tail
        if _in_profiler(e):
            # torch's profiler itself failed (seen: torch 2.4/2.5 on Python 3.12 with stacks and
            # torch.save: "Python replay stack is empty"): not the script's fault.
            cap.send(event="error", kind="profiler", message=f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(6)
        t = e.__traceback__
        while t is not None and (t.tb_frame.f_code.co_filename == __file__
                                 or "runpy" in t.tb_frame.f_code.co_filename):
            t = t.tb_next  # show the user's frames, not ours
        tb = [x for x in map(_without_ours, traceback.format_exception(type(e), e, t)) if x]
        cap.send(event="error", kind="raised", message=_summary(e), traceback="".join(tb[-12:]))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(4)
    if not cap.done:
        cap.send(event="exited", steps=len(cap.boundaries), status=status)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0 if cap.done else 5)


if __name__ == "__main__":
    main()
