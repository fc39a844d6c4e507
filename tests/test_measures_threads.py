"""measures on threads' time: background_python (when a background thread of this process ran
Python, holding the GIL the training thread then waits for: its frames that hold no wait, whole)
and outside (the recorded steps' time outside some events: the training's own time beside the
loader's)."""
import numpy as np
from test_report_tables import _trace

from trainprof.trace import measures as M

PY = "python_function"


def _steps(lo, hi):
    return M.Steps(np.array([1]), np.array([float(lo)]), np.array([float(hi)]), tid=1, pid=1)


def test_a_frame_computing_in_python_counts_whole_not_only_its_tiny_callees():
    ev = [
        ("tensorboard/event_file_writer.py(269): _run", PY, 0, 1000, 2),  # the thread's loop
        ("queue.py(154): get", PY, 10, 300, 2),  # waiting for a record
        ("<built-in method acquire of _thread.lock object>", PY, 20, 280, 2),
        ("tensorboard/pywrap_tensorflow.py(123): crc_update", PY, 400, 500, 2),  # Python bytecode...
        ("<built-in function ord>", PY, 410, 1, 2),  # ...calling tiny builtins
        ("<built-in function ord>", PY, 600, 1, 2),
        ("train.py(10): main", PY, 0, 1000, 1),  # the training thread: never counted
    ]
    s, e = M.background_python(_trace(ev), _steps(0, 1000), "tensorboard")
    assert list(zip(s.tolist(), e.tolist())) == [(400.0, 900.0)]


def test_no_thread_of_the_hint_no_intervals():
    ev = [("other/lib.py(1): work", PY, 0, 500, 2), ("train.py(10): main", PY, 0, 1000, 1)]
    s, e = M.background_python(_trace(ev), _steps(0, 1000), "tensorboard")
    assert len(s) == 0 and len(e) == 0


def test_outside_is_each_steps_time_less_the_events():
    # two steps [0, 100) and [100, 200); events [10, 30), [20, 40) (overlapping), [90, 120), [150, 160)
    ev = [("a", "cpu_op", 10, 20, 1), ("b", "cpu_op", 20, 20, 1), ("c", "cpu_op", 90, 30, 1), ("d", "cpu_op", 150, 10, 1)]
    tr = _trace(ev)
    st = M.Steps(np.array([1, 2]), np.array([0.0, 100.0]), np.array([100.0, 200.0]), tid=1, pid=1)
    got = M.outside(tr, st, np.arange(4))
    assert got == [(0.0, 10.0), (40.0, 90.0), (120.0, 150.0), (160.0, 200.0)]
    assert M.outside(tr, st, np.zeros(0, np.int64)) == [(0.0, 100.0), (100.0, 200.0)]
