"""measures.background_python: when a background thread of this process ran Python (holding
the GIL the training thread then waits for): its frames that hold no wait, whole."""
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
