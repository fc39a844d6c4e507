"""What `verify` prints of its rounds (fix/verify.py): the spread is shown, and rounds that
disagree are said to."""

from trainprof.fix.verify import Verified, summary


def test_rounds_that_agree_give_no_warning():
    v = Verified(original_ms=[20.0, 20.4, 19.8], patched_ms=[5.0, 5.1, 5.0])
    lines = summary(v)
    assert "measured speedup: 4x (min 3.96x, max 4x)" in lines, lines
    assert not any(ln.startswith("warning") for ln in lines)


def test_rounds_that_disagree_are_said_to():
    v = Verified(original_ms=[20.0, 20.0, 20.0], patched_ms=[5.0, 12.0, 6.0])
    warn = [ln for ln in summary(v) if ln.startswith("warning: the rounds disagree")]
    assert warn and "4x" in warn[0] and "1.67x" in warn[0]
