"""Steady-state detection (trainprof/capture/steady.py), fed as the child feeds it: windows of
steps sized by the pace of the last one. The step times come from a model of a training loop
fed by a DataLoader (workers that make batches ahead, up to their prefetch queue), so the traps
measured on real scripts are reproduced: a queue filled during a slow start, bursty arrivals, a
periodic evaluation, one outlier."""

from __future__ import annotations

import math

import pytest

from trainprof.capture.steady import Settle, SpikeWatch, Window, period, window_size


def loader_loop(n, compute, workers=0, per_batch=0.0, prefetch=2):
    """(step durations (s), batches ready in the queue at each step's end) of n steps: step k
    computes compute(k) seconds once its batch is there. With workers, worker k % workers makes
    batch k in per_batch seconds, starting once its previous batch is done and the queue
    (workers x prefetch batches) has room."""
    q = workers * prefetch
    ready, taken, t = [], [], 0.0
    for k in range(n):
        if workers:
            start = ready[k - workers] if k >= workers else 0.0
            if k >= q:
                start = max(start, taken[k - q])
            ready.append(start + per_batch)
            t = max(t, ready[k])
        else:
            t += per_batch  # loaded on the training thread
        taken.append(t)
        t += compute(k)
    ends = [taken[k] + compute(k) for k in range(n)]
    steps = [ends[0]] + [b - a for a, b in zip(ends, ends[1:])]
    # ready at the end of step k: the batches after k made by then (the next q at most)
    levels = [sum(1 for j in range(k + 1, min(k + 1 + q, len(ready))) if ready[j] <= ends[k]) for k in range(n)]
    return steps, levels if workers else None


def search(steps, levels=None, queued=0, budget=60.0, min_steps=5, quantum=1):
    """Feed the step durations to a Settle window by window, as the child does."""
    st = Settle(min_steps=min_steps, budget_s=budget, quantum=quantum)
    first, size = 0, 4
    while first + size <= len(steps):
        w = Window(first, size, sum(steps[first:first + size]), tuple(steps[first:first + size]),
                   level=levels[first + size - 1] if levels else None)
        if st.add(w, queued) or st.over_budget:
            return st
        first, size = first + size, st.next_size(w.per_step)
    return st


def test_warm_up_transient_is_left_behind():
    # a first step compiling for 3 s, then steps slowing less and less (allocator growth,
    # autotuning): 60 ms at first, 10 ms in the end
    steps, _ = loader_loop(2000, lambda k: 3.0 if k == 0 else 0.01 * (1 + 5 * math.exp(-k / 10)))
    r = search(steps).result()
    assert r["reached"] and r["steps"] > 30
    assert r["step_ms"] == pytest.approx(10, rel=0.05)
    assert r["p10_ms"] == pytest.approx(10, rel=0.05) and r["p90_ms"] == pytest.approx(10, rel=0.1)


def test_a_queue_filled_during_a_slow_start_is_drained_before_the_step_is_taken():
    # 4 workers x prefetch 8 = 32 batches queued while the first step compiles for 2 s; then each
    # step computes 5 ms but the loader makes one batch per 40 ms / 4 = 10 ms
    steps, levels = loader_loop(3000, lambda k: 2.0 if k == 0 else 0.005, workers=4, per_batch=0.04, prefetch=8)
    early = sum(steps[1:41]) / 40
    assert early < 0.006  # the trap: served from the queue, the first 60 steps look twice as fast
    r = search(steps, levels, queued=32, quantum=4).result()
    assert r["reached"] and r["steps"] > 60
    assert r["step_ms"] == pytest.approx(10, rel=0.05)


def test_bursty_arrivals_give_throughput_not_the_median():
    # 2 workers, each batch 36 ms of I/O: a batch every 18 ms, in bursts; the step itself is 2 ms
    steps, levels = loader_loop(3000, lambda k: 0.002, workers=2, per_batch=0.036, prefetch=2)
    r = search(steps, levels, queued=4, quantum=2).result()
    assert r["reached"]
    assert r["step_ms"] == pytest.approx(18, rel=0.05)
    assert r["p10_ms"] < 0.5 * r["step_ms"]  # the spread is shown: most steps are fast


def test_periodic_spike_is_the_runs_own_and_reported():
    # 10 ms steps; every 10th step evaluates for 200 ms
    steps, _ = loader_loop(3000, lambda k: 0.2 if k % 10 == 9 else 0.01)
    st = search(steps)
    r = st.result()
    assert r["reached"] and r["period"] == 10
    assert r["step_ms"] == pytest.approx(10, rel=0.05)
    assert r["spike_ms"] == pytest.approx(210, rel=0.05)
    # the recorded steps wait out the next spike where it would fall among them
    k = st.windows[-1].end
    for length in (3, 5, 8):
        wait = st.clear_of_spikes(k, length)
        assert 0 <= wait < 10
        assert not [s for s in range(k + wait, k + wait + length) if s % 10 == 9], (k, wait, length)
    assert st.clear_of_spikes(k, 10) == 0  # a window as long as the period cannot avoid them


def test_one_outlier_is_never_built_on():
    steps = [0.01] * 3000
    steps[10] = 0.5  # one checkpoint
    st = search(steps)
    r = st.result()
    assert r["reached"] and r["period"] is None and 10 in r["outliers"]
    w1, w2 = st.windows[-2:]
    assert not (w1.first <= 10 < w2.end)
    assert r["step_ms"] == pytest.approx(10, rel=0.01)


def test_a_run_that_keeps_changing_is_not_called_steady():
    steps = [0.01 * 1.05 ** (k / 4) for k in range(3000)]  # 5% slower every window of 4
    st = search(steps, budget=2.0)
    assert not st.result()["reached"] and st.over_budget


def test_window_sizes_and_periods():
    assert window_size(0.0001) == 100 and window_size(1.0) == 4 and window_size(0.01) == 20
    assert period([24, 49, 74]) == 25 and period([24, 50, 74]) == 25
    assert period([10, 30, 35]) is None and period([10, 20]) is None
    # a trial's longer windows (a second): a 30 ms step's window holds 34 steps, a fast one up to 500
    assert window_size(0.03, 1.0) == 34 and window_size(0.0001, 1.0) == 500 and window_size(2.0, 1.0) == 4
    assert Settle(window_s=1.0).next_size(0.03) == 34 and Settle().next_size(0.03) == 7


def test_bursts_of_workers_that_drift_apart_are_the_pace_not_outliers():
    # 8 workers whose batches take 40 ms give or take 30%: the bursts come at uneven gaps, each
    # a long wait among fast steps; it is the loader's pace (5 ms a step), not a run with outliers
    import random

    rnd = random.Random(1)
    jitter = [0.04 * (0.7 + 0.6 * rnd.random()) for _ in range(4000)]
    q, ready, taken, t, ends = 16, [], [], 0.0, []
    for k in range(4000):
        start = max(ready[k - 8] if k >= 8 else 0.0, taken[k - q] if k >= q else 0.0)
        ready.append(start + jitter[k])
        t = max(t, ready[k])
        taken.append(t)
        t += 0.0005
        ends.append(t)
    steps = [ends[0]] + [b - a for a, b in zip(ends, ends[1:])]
    r = search(steps, queued=q, quantum=8).result()
    assert r["reached"]
    assert r["step_ms"] == pytest.approx(5, rel=0.15)


def test_the_watch_after_the_trace_finds_a_longer_period_and_stops():
    w = SpikeWatch(budget_s=30.0)
    steps = [0.25 if k % 80 == 79 else 0.01 for k in range(5000)]
    n = next(k for k, s in enumerate(steps) if w.add(s))
    r = w.result()
    assert r["period"] == 80 and n == 3 * 80 - 1  # stopped at the third spike
    assert r["spike_ms"] == pytest.approx(250) and r["calm_ms"] == pytest.approx(10)
    quiet = SpikeWatch(budget_s=1.0)
    n = next(k for k in range(5000) if quiet.add(0.01))
    assert quiet.result()["period"] is None and n == 99  # the budget, not longer


def test_the_steady_wait_leaves_the_spikes_waits_out():
    # 10 ms steps, 2 ms of them waiting for a batch; every 10th step the loader starts its
    # workers again: 300 ms, all of it waiting
    st = Settle(min_steps=5)
    first, size = 0, 10
    while first < 400 and not st.add(Window(first, size, sum(s := [0.3 if (first + i) % 10 == 9 else 0.01
                                                                  for i in range(size)]), tuple(s),
                                            step_wait=tuple(0.3 if (first + i) % 10 == 9 else 0.002
                                                            for i in range(size)))):
        first += size
    r = st.result()
    assert r["reached"] and r["period"] == 10
    assert r["step_ms"] == pytest.approx(10) and r["loader_wait_ms"] == pytest.approx(2)


def test_issue_time_is_the_first_step_of_each_steady_window():
    from trainprof.capture.rundir import issue_ms

    # two windows of 3 and 4 steps: each starts just after a sync, the GPU queue empty
    run = {"unprofiled_step_ms": [20.0, 90.0, 100.0, 24.0, 95.0, 100.0, 100.0],
           "steady": {"window_steps": [4, 4, 3, 4]}}
    assert issue_ms(run) == 22.0
    run["steady"]["window_steps"] = [4, 4]  # not the windows these steps came from: unknown
    assert issue_ms(run) is None
    assert issue_ms({"unprofiled_step_ms": [5.0]}) is None
