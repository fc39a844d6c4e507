"""Aligning the line log with the trace: refine_offset narrows the anchors' bounds."""
import numpy as np

from trainprof.trace.lines import refine_offset


def _run(true_off_ns, rng):
    # A loop of lines; each line starts (recorder ns), then 2-6 µs later runs one op
    # that ends 1-3 µs before the next line starts.
    starts = np.cumsum(rng.uniform(12_000, 30_000, 400)).astype(np.int64)
    op_s = starts[:-1] + rng.uniform(2_000, 6_000, len(starts) - 1)
    op_e = starts[1:] - rng.uniform(1_000, 3_000, len(starts) - 1)
    return starts, (op_s + true_off_ns) / 1000.0, (op_e + true_off_ns) / 1000.0


def test_offset_recovered_from_ops_inside_wide_anchor_bounds():
    rng = np.random.default_rng(0)
    true = 5e15
    times, s, e = _run(true, rng)
    off, err = refine_offset(times, true + 9_000, 12_000, s, e)  # anchors: 9 µs off, ±12 µs
    assert abs(off - true) <= 3_000 and err <= 3_000
    assert off - err <= true <= off + err


def test_ops_that_straddle_every_offset_do_not_move_it():
    rng = np.random.default_rng(1)
    true = 5e15
    times, s, e = _run(true, rng)
    # a long op spanning many lines (a callback into user code) forbids every offset alike
    s = np.append(s, s[10]); e = np.append(e, e[60])
    off, _ = refine_offset(times, true - 7_000, 12_000, s, e)
    assert abs(off - true) <= 3_000


def test_no_ops_keeps_the_anchor_offset():
    times = np.arange(0, 100_000, 10_000, dtype=np.int64)
    assert refine_offset(times, 123.0, 4.0, [], []) == (123.0, 4.0)


def test_line_costs_take_out_the_recorders_own_cost_per_event():
    from trainprof.trace.lines import unprofiled_line_costs

    # one logged step of 10 µs: line 2 holds 6 µs with 2 events, line 3 holds 4 µs with 8 events
    # (a one-line loop); the step takes 5 µs without the recorder: 0.5 µs per event.
    events = [(0, 0, 1, 0, 1), (0, 1, 1, 0, 2)] + [(6000 + 400 * i, 1, 1, 0, 3) for i in range(8)]
    doc = {"files": ["/a.py"], "unprofiled": {"steps": 1, "initial_stack": [], "events": events,
                                              "start": 0, "end": 10_000}}
    raw = unprofiled_line_costs(doc)
    assert raw[("/a.py", 2)] == 6.0 and raw[("/a.py", 3)] == 4.0
    fixed = unprofiled_line_costs(doc, clean_step_us=5.0)
    assert abs(fixed[("/a.py", 2)] - 5.0) < 1e-9 and abs(fixed[("/a.py", 3)] - 0.0) < 1e-9
    # events before the window (the recorder's warm-up step) cost nothing here
    doc["unprofiled"]["events"] = [(-5000, 1, 1, 0, 2)] + events[1:]
    doc["unprofiled"]["initial_stack"] = [(1, 0, 1)]
    assert unprofiled_line_costs(doc)[("/a.py", 2)] == 6.0


def test_a_step_that_runs_no_line_of_the_users_is_the_line_that_called_into_it():
    """A thin script (`trainer.train()` of a framework, as in TRL's sft.py): no user line runs in
    the recorded steps, so the log has no event, only the stack when the recorder started. The
    steps' time is that stack's innermost line, not "no line attribution"."""
    from trainprof.trace.lines import build_line_map, unprofiled_line_costs

    init = [(11, 0, 145), (12, 0, 113)]  # module line 145 calls main(), at line 113: trainer.train()
    doc = {"files": ["/s.py"], "initial_stack": init, "events": [], "anchors": [[1, 1_000, 2_000]],
           "unprofiled": {"steps": 2, "initial_stack": init, "events": [], "start": 0, "end": 50_000}}
    lm = build_line_map(doc, {1: 10.0}, {0: 10.0})
    assert lm is not None
    ids = lm.stack_at(np.array([10.0, 30.0, 1e6]))
    assert [lm.innermost(int(i)) for i in ids] == [("/s.py", 113)] * 3
    assert lm.frame_in(int(ids[0]), "/s.py", range(140, 150)) == 145
    assert unprofiled_line_costs(doc) == {("/s.py", 113): 25.0}
    # no event and no user frame at all: nothing to attribute
    assert build_line_map(dict(doc, initial_stack=[]), {1: 10.0}, {0: 10.0}) is None
