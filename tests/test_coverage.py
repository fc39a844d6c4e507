"""Which lines ran (capture/coverage.py), on this interpreter: sys.monitoring on 3.12+, settrace
before."""
import runpy
import sys

import pytest

from trainprof.capture import coverage

TARGET = """x = 1
if x > 5:
    y = 2
for i in range(3):
    z = i


def f():
    return 1
"""


def _cover(tmp_path, text):
    target = tmp_path / "target.py"
    target.write_text(text)
    c = coverage.Coverage(lambda code: 0 if code.co_filename == str(target) else -1)
    c.start()
    try:
        runpy.run_path(str(target))
    finally:
        c.stop()
    return c.to_json()


def test_the_lines_that_ran_and_not_those_that_did_not(tmp_path):
    got = _cover(tmp_path, TARGET)
    assert got["whole"] == (sys.version_info >= (3, 12))
    assert [line for _, line in got["lines"]] == [1, 2, 4, 5, 8]  # not 3 (a branch not taken), not 9 (never called)
    assert got["partial"] == []
    assert sys.gettrace() is None  # nothing left tracing


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="sys.monitoring sees each line once: no budget needed")
def test_a_long_setup_loop_is_left_untraced_and_said_so(tmp_path, monkeypatch):
    monkeypatch.setattr(coverage, "LINE_BUDGET", 50)
    got = _cover(tmp_path, "s = 0\nfor i in range(100):\n    s += i\nt = s\n")
    assert got["partial"] == [(0, 1, 4)]  # the module's code, lines 1-4: unknown, not "not run"
