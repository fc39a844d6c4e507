"""Unit tests of the what-if replay (trainprof/estimate/) on hand-built timelines.

Every expected value below is computed by hand from the model in the module docstring:
the CPU thread walks its events, each GPU kernel starts at max(launch + latency, its
stream free), a sync costs min(its length, SYNC_OVERHEAD_US) and then waits for the GPU,
and the step is the slower of the CPU's and the GPU's time over the window.
"""

import numpy as np
import pytest

from trainprof.estimate.calibration import ISSUE_MAX, OP_US, calibrate, make_warp
from trainprof.estimate.change import Change
from trainprof.estimate.intervals import Warp
from trainprof.estimate.replay import SYNC_OVERHEAD_US, replay
from trainprof.estimate.timeline import BLOCK, LAUNCH, MIN_KEEP, PY_WEIGHT, Timeline

STREAM = 7
LAT = 5.0


def gid(k, j=0):
    """GPU event id of the j-th kernel of the k-th event given to make()."""
    return 1000 + 10 * k + j


def make(events, lo=0.0, hi=1000.0, n_steps=1, lat=LAT, pre=(), ov=()):
    """A Timeline from a compact description, as build_timeline() would build it.

    events: ("L", t, dur or [durs]) -- a launch at t of kernels on stream 7;
            ("S", t, end)           -- a sync call (BLOCK) from t to its recorded end.
    The k-th event has trace index k; its kernels have ids gid(k, j).
    pre: GPU work issued before the window, (start, dur, stream).
    ov: recorded profiler events (t, weight) on the issuing thread.
    """
    ev_t, ev_kind, ev_idx, ev_end = [], [], [], []
    launch_gpu, g_dur, g_stream, g_lat = {}, {}, {}, {}
    free = {}
    for s, d, st in pre:
        free[st] = max(s, free.get(st, -np.inf)) + d
    for k, ev in enumerate(events):
        kind, t, x = ev
        ev_t.append(float(t))
        ev_idx.append(k)
        if kind == "L":
            durs = x if isinstance(x, (list, tuple)) else [x]
            ev_kind.append(LAUNCH)
            ev_end.append(float(t) + 1.0)  # a launch call's end; unused by replay
            launch_gpu[k] = []
            for j, d in enumerate(durs):
                g = gid(k, j)
                launch_gpu[k].append(g)
                g_dur[g], g_stream[g], g_lat[g] = float(d), STREAM, float(lat)
                free[STREAM] = max(t + lat, free.get(STREAM, -np.inf)) + d
        else:
            assert kind == "S"
            ev_kind.append(BLOCK)
            ev_end.append(float(x))
    o = np.argsort(np.asarray(ev_t, float), kind="stable")
    ov = sorted(ov)
    return Timeline(
        lo=float(lo), hi=float(hi), n_steps=n_steps,
        ev_t=np.asarray(ev_t, float)[o], ev_kind=np.asarray(ev_kind, np.int8)[o],
        ev_idx=np.asarray(ev_idx, np.int64)[o], ev_end=np.asarray(ev_end, float)[o],
        launch_gpu=launch_gpu, g_dur=g_dur, g_stream=g_stream, g_lat=g_lat,
        pre=[(float(s), float(d), st) for s, d, st in pre],
        gpu_end=max(free.values(), default=float(lo)),
        ov_t=[float(t) for t, _ in ov], ov_w=np.asarray([w for _, w in ov], float),
    )


def step(tl, change=Change(), **kw):
    return replay(tl, change, **kw).step_us


# --- shared timelines ---------------------------------------------------------------

def cpu_bound():
    # Two short kernels, a short sync with the GPU long idle; the CPU runs the whole 1000 us.
    return make([("L", 100, 50), ("S", 300, 300 + SYNC_OVERHEAD_US), ("L", 600, 50)])


def gpu_bound_sync():
    # Three quick launches of 300 us kernels (15-315, 315-615, 615-915), then a sync at
    # 40 that waits until 915, then 85 us of CPU to the window's end.
    return make([("L", 10, 300), ("L", 20, 300), ("L", 30, 300), ("S", 40, 915)])


def sync_then_cpu():
    # Launch at 10 (kernel 15-515), sync 20-515 (waits 490 beyond its own 5 us), then
    # 885 us of CPU with a small launch at 1400 (kernel 1405-1455); window ends at 1500.
    return make([("L", 10, 500), ("S", 20, 515), ("L", 1400, 50)], hi=1500)


# --- 1. no change reproduces the measured step ----------------------------------------

def test_no_change_cpu_bound():
    r = replay(cpu_bound())
    assert r.step_us == pytest.approx(1000.0)
    assert r.cpu_us == pytest.approx(1000.0)
    assert r.gpu_busy_us == pytest.approx(100.0)


def test_no_change_gpu_bound():
    r = replay(gpu_bound_sync())
    # CPU: 40 us to the sync, waits to 915, then 85 us -> 1000; GPU busy 900 of it.
    assert r.step_us == pytest.approx(1000.0)
    assert r.gpu_busy_us == pytest.approx(900.0)
    # Without the sync the GPU is the bottleneck: 15 + 3 * 400 = 1215 per window.
    tl = make([("L", 10, 400), ("L", 20, 400), ("L", 30, 400)], hi=100)
    r = replay(tl)
    assert r.step_us == pytest.approx(1215.0)
    assert r.cpu_us == pytest.approx(100.0)


def test_no_change_cpu_runs_ahead():
    # The GPU still runs 700 us of earlier steps' work (-500..200) when the window opens;
    # two 600 us kernels launched at 10 and 20 queue behind it (200-800, 800-1400).
    # The window's GPU time is counted from when that backlog drains: (1400 - 200) / 2 steps.
    tl = make([("L", 10, 600), ("L", 20, 600)], hi=400, n_steps=2, pre=[(-500.0, 700.0, STREAM)])
    r = replay(tl)
    assert r.step_us == pytest.approx(600.0)
    assert r.cpu_us == pytest.approx(200.0)


# --- 2./3. dropping a sync --------------------------------------------------------------

def test_drop_sync_gpu_waiting_saves_its_wait():
    tl = sync_then_cpu()
    assert step(tl) == pytest.approx(1500.0)
    # Dropped: the sync costs 5 us (T=25), then 885 us of CPU (T=910), the launch at 1400
    # runs 915-965, and the window ends at 1010: saves the 490 us wait.
    assert step(tl, Change(drop_syncs=frozenset({1}))) == pytest.approx(1010.0)


def test_drop_sync_gpu_idle_saves_nothing():
    tl = cpu_bound()
    base = step(tl)
    assert step(tl, Change(drop_syncs=frozenset({1}))) == pytest.approx(base)
    # Also when the sync call itself is longer than SYNC_OVERHEAD_US: nothing to wait for either way.
    tl = make([("L", 100, 50), ("S", 300, 340), ("L", 600, 50)])
    assert step(tl, Change(drop_syncs=frozenset({1}))) == pytest.approx(step(tl))


# --- 4. overlapping savings count once ----------------------------------------------------

def test_overlapping_removals_count_once():
    tl = make([("L", 100, 50), ("L", 800, 50)])  # CPU-bound, no events inside [200, 700)
    a = Change(remove_cpu=((200.0, 500.0),))
    b = Change(remove_cpu=((400.0, 700.0),))
    base = step(tl)
    sa, sb, sab = base - step(tl, a), base - step(tl, b), base - step(tl, a | b)
    assert sa == pytest.approx(300.0) and sb == pytest.approx(300.0)
    assert sab == pytest.approx(500.0)  # the union [200, 700)
    assert sab < sa + sb


def test_sync_drop_and_removal_recover_same_idle_once():
    tl = sync_then_cpu()
    base = step(tl)
    drop = Change(drop_syncs=frozenset({1}))
    cut = Change(remove_cpu=((515.0, 1005.0),))  # 490 us of CPU after the sync
    s_drop, s_cut = base - step(tl, drop), base - step(tl, cut)
    assert s_drop == pytest.approx(490.0)
    assert s_cut == pytest.approx(490.0)
    # Both: CPU 25 + 395 -> launch at 420 queues behind the first kernel (515-565); CPU ends
    # at 520, the GPU at 565: the bottleneck moved, so the step is 565, not 1500 - 980.
    both = step(tl, drop | cut)
    assert both == pytest.approx(565.0)
    assert base - both < s_drop + s_cut


# --- 5. removed launches drop their GPU work --------------------------------------------

def test_remove_cpu_drops_launched_gpu_work():
    tl = make([("L", 10, 400), ("L", 20, 400)], hi=100)  # kernels 15-415, 415-815
    assert step(tl) == pytest.approx(815.0)
    r = replay(tl, Change(remove_cpu=((15.0, 25.0),)))  # contains the launch at 20
    assert r.step_us == pytest.approx(415.0)
    assert r.gpu_busy_us == pytest.approx(400.0)
    assert r.cpu_us == pytest.approx(90.0)


def test_drop_gpu():
    tl = make([("L", 10, 400), ("L", 20, 400)], hi=100)
    assert step(tl, Change(drop_gpu=frozenset({gid(0)}))) == pytest.approx(425.0)  # only 25-425


# --- 6. the loader's floor (applied after the replay: estimates.bounded) -----------------

def test_the_replay_knows_no_floor():
    tl = cpu_bound()
    assert step(tl, Change(floor_us=1500.0)) == pytest.approx(1000.0)
    assert step(tl, Change(remove_cpu=((200.0, 700.0),), floor_us=800.0)) == pytest.approx(500.0)


# --- 7. gpu_scale -------------------------------------------------------------------------

def test_gpu_scale_gpu_bound():
    tl = make([("L", 10, 400), ("L", 20, 400)], hi=100)
    # The second kernel halved: 15-415, 415-615.
    assert step(tl, Change(gpu_scale=((gid(1), 0.5),))) == pytest.approx(615.0)


def test_gpu_scale_cpu_bound():
    tl = cpu_bound()
    r = replay(tl, Change(gpu_scale=((gid(0), 0.5),)))
    assert r.step_us == pytest.approx(1000.0)
    assert r.gpu_busy_us == pytest.approx(75.0)  # the scale did apply


# --- 8. profiler overhead -----------------------------------------------------------------

OV = [(100.0 + 10 * i, 1.0) for i in range(10)] + [(200.0 + 10 * i, PY_WEIGHT) for i in range(5)]
OV_W = 10 + 5 * PY_WEIGHT  # all inside the CPU gap [0, 900)


def overhead_tl():
    # 900 us of CPU with 15 recorded events, a launch at 900 (kernel 10 us), 100 us more.
    return make([("L", 900, 10)], ov=OV)


def test_overhead_shortens_gap_by_weight():
    tl = overhead_tl()
    assert step(tl) == pytest.approx(1000.0)
    assert step(tl, overhead_us=2.0) == pytest.approx(1000.0 - 2.0 * OV_W)


def test_overhead_keeps_min_share():
    tl = overhead_tl()
    # 1000 us per event would remove far more than the gap: it keeps MIN_KEEP of its 900 us.
    assert step(tl, overhead_us=1000.0) == pytest.approx(MIN_KEEP * 900.0 + 100.0)


def test_overhead_events_in_removed_time_drop_out():
    tl = overhead_tl()
    # Removing [100, 150) takes 50 us and the 5 events in it: 850 - 2 * (OV_W - 5) + 100.
    r = step(tl, Change(remove_cpu=((100.0, 150.0),)), overhead_us=2.0)
    assert r == pytest.approx(850.0 - 2.0 * (OV_W - 5) + 100.0)


def test_cpu_scale():
    tl = overhead_tl()
    assert step(tl, cpu_scale=0.5) == pytest.approx(500.0)
    assert step(tl, overhead_us=2.0, cpu_scale=0.5) == pytest.approx(0.5 * (1000.0 - 2.0 * OV_W))
    # The GPU side is not scaled: the first launch comes at 5 (not 10), kernels 10-410, 410-810.
    g = make([("L", 10, 400), ("L", 20, 400)], hi=100)
    assert step(g, cpu_scale=0.5) == pytest.approx(810.0)


def test_calibrate_scales_the_cpu_beyond_the_per_event_cost():
    tl = overhead_tl()
    (o, c), note = calibrate(tl, 600.0, cuda=True)
    # the full per-event cost, then the CPU scaled down until the replay matches
    assert o == OP_US["cuda"] and c < 1.0
    assert step(tl, overhead_us=o, cpu_scale=c) == pytest.approx(600.0, rel=0.01)


def test_calibrate_needs_less_than_the_per_event_cost():
    tl = overhead_tl()
    (o, c), _ = calibrate(tl, 990.0, cuda=True)
    assert c == 1.0 and 0 < o < OP_US["cuda"]
    assert step(tl, overhead_us=o) == pytest.approx(990.0, rel=0.01)


@pytest.mark.parametrize("unprofiled", [1000.0, 1200.0, None])
def test_calibrate_keeps_the_per_event_cost_when_no_overhead_shows(unprofiled):
    # No visible overhead -- noise, or a GPU-bound step that hides it: the cost stays,
    # unscaled (it counts once a fix moves the bottleneck to the CPU).
    (o, c), _ = calibrate(overhead_tl(), unprofiled, cuda=True)
    assert (o, c) == (OP_US["cuda"], 1.0)


def test_warp_corrects_each_line_by_its_own_ratio():
    # A CPU-bound step: one launch at 900 of a 50 us kernel, window [0, 1000).
    tl = make([("L", 900, 50)], hi=1000)
    assert step(tl) == pytest.approx(1000.0)
    # [0, 600) was a line the profiler slowed 4x (factor 0.25); the rest is unchanged.
    w = Warp(0.0, 1000.0, [(0.0, 600.0, 0.25)], default=1.0)
    assert step(tl, warp=w) == pytest.approx(150.0 + 400.0)
    # Removing [100, 300) inside the corrected line saves its corrected 50 us, not 200.
    assert step(tl, Change(remove_cpu=((100.0, 300.0),)), warp=w) == pytest.approx(500.0)
    # ... and shrinking it to a quarter keeps a quarter of those 50 us.
    assert step(tl, Change(remove_cpu=((100.0, 300.0, 0.25),)), warp=w) == pytest.approx(512.5)


def test_calibrate_with_a_warp_scales_what_the_line_log_missed():
    tl = make([("L", 900, 50)], hi=1000)
    w = Warp(0.0, 1000.0, [(0.0, 600.0, 0.25)], default=1.0)
    (o, c), note = calibrate(tl, 440.0, cuda=False, warp=w)
    assert o == 0.0 and c == pytest.approx(0.8, rel=0.01) and "line by line" in note
    assert step(tl, cpu_scale=c, warp=w) == pytest.approx(440.0, rel=0.01)


def gpu_bound_overhead_tl(sync=False):
    # overhead_tl's 1000 us of CPU, then a 3000 us kernel the step waits for (a sync at the
    # end where sync=True): the GPU-bound step hides the profiler's cost on the CPU side
    ev = [("L", 900, 3000)] + ([("S", 990, 3905)] if sync else [])
    return make(ev, ov=OV)


@pytest.mark.parametrize("sync", [False, True])
def test_calibrate_holds_a_gpu_bound_cpu_side_to_its_timed_issue(sync):
    tl = gpu_bound_overhead_tl(sync)
    nowait = Change(drop_syncs=frozenset({1}) if sync else frozenset())
    # The CPU issued a step in 930 us unprofiled: more than 4 us an event must go.
    (o, c), note = calibrate(tl, 4000.0, cuda=True, issue_us=930.0)
    assert o > OP_US["cuda"] and c == 1.0
    assert replay(tl, nowait, overhead_us=o).cpu_us == pytest.approx(930.0, rel=0.01)
    assert "issued a step in 0.93 ms" in note
    # Faster still than ISSUE_MAX times the per-event cost explains: the CPU scaled too.
    (o, c), _ = calibrate(tl, 4000.0, cuda=True, issue_us=500.0)
    assert o == ISSUE_MAX * OP_US["cuda"] and c < 1.0
    assert replay(tl, nowait, overhead_us=o, cpu_scale=c).cpu_us == pytest.approx(500.0, rel=0.01)


def test_calibrate_takes_a_slow_issue_as_a_bound_not_a_target():
    # a first step that waited (a batch, a sync) says nothing against the per-event cost
    (o, c), _ = calibrate(gpu_bound_overhead_tl(), 4000.0, cuda=True, issue_us=2500.0)
    assert (o, c) == (OP_US["cuda"], 1.0)


def test_a_lines_wait_beyond_its_own_work_shrinks_with_the_work_a_change_leaves():
    # A CPU-bound step of 1000 us (a 1 us kernel launched at 900): line A [0, 800) and line
    # B [800, 1000). The line log timed B unprofiled at 200 us, but its own work (its profiled
    # time less the profiler's per-event cost) is 50 us: 150 us of waiting (a full launch
    # queue, the GIL another thread held).
    tl = make([("L", 900, 1)], hi=1000)
    spans = {"A": [(0.0, 800.0)], "B": [(800.0, 1000.0)]}
    w = make_warp(0.0, 1000.0, spans, {"A": 800.0, "B": 200.0}, {"A": 800.0, "B": 200.0},
                  own=lambda key, p: 50.0 if key == "B" else p)
    assert w.own is not None
    # Unchanged, the lines count as the log timed them.
    assert step(tl, warp=w) == pytest.approx(1000.0)
    # A fix removing all of A (80% of the thread's time) leaves B's own 50 us and a fifth of its wait.
    assert step(tl, Change(remove_cpu=((0.0, 800.0),)), warp=w) == pytest.approx(50.0 + 0.2 * 150.0)
    # A small fix leaves nearly all of the wait.
    assert step(tl, Change(remove_cpu=((0.0, 10.0),)), warp=w) == pytest.approx(990.0 - 0.01 * 150.0)


def test_no_wait_no_own_warp():
    spans = {"A": [(0.0, 800.0)], "B": [(800.0, 1000.0)]}
    w = make_warp(0.0, 1000.0, spans, {"A": 800.0, "B": 200.0}, {"A": 400.0, "B": 100.0}, own=lambda key, p: p)
    assert w.own is None
