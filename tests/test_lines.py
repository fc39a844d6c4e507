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
