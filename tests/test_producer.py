"""The input pipeline as a producer (estimate/producer.py) and the bound it puts on every
estimate (estimate/estimates.py): no fix makes the step faster than the loader delivers; a
loader fix sets the pace it would have."""

import os

import pytest

from trainprof.estimate.change import Change
from trainprof.estimate.estimates import bounded, floor_us
from trainprof.estimate.producer import MAX_WORKERS, Producer, capacity_us, producer


def test_io_bound_workers_overlap_past_the_cores():
    # 40 ms a batch, 1 ms of it CPU: 2 workers give a batch every 20 ms; 8 every 5 ms, on 2 cores
    p = Producer(workers=2, batch_wall_us=40_000, batch_cpu_us=1_000, cores=2)
    assert p.period_us() == pytest.approx(20_000)
    assert p.period_us(8) == pytest.approx(5_000)
    assert p.workers_for(6_000) == 7 and p.period_us(7) <= 6_000
    assert not p.cpu_bound


def test_cpu_bound_workers_are_bound_by_the_spare_cores():
    # 40 ms of CPU a batch on 4 cores: 3 spare; more workers than that do not make batches faster
    p = Producer(workers=2, batch_wall_us=40_000, batch_cpu_us=40_000, cores=4)
    assert p.cpu_bound
    assert p.period_us(3) == pytest.approx(40_000 / 3)
    assert p.period_us(12) == pytest.approx(40_000 / 3)
    assert p.workers_for(1_000) == 3  # the fastest it can go; a 4th worker adds nothing


def test_the_cores_bound_the_step_when_the_training_process_fills_them():
    # seen on 2 cores: a step of 12.8 ms whose process used 25.4 ms of CPU (intra-op threads),
    # half of it loading on the training thread: workers only move that work, the cores stay full
    info = {"steady": {"step_ms": 12.8, "cpu_ms": 25.4}}
    assert capacity_us(info, None, False, 2) == pytest.approx(12_700)
    assert capacity_us(info, None, False, 16) is None  # cores to spare: the producer's pace bounds it
    # seen on 16 cores: 349 ms of CPU in a 44 ms step (intra-op threads), loading 19x faster in workers
    assert capacity_us({"steady": {"step_ms": 44.0, "cpu_ms": 349.0}}, None, False, 16) is None
    # with workers, theirs for a step's batches counts too
    p = Producer(workers=2, batch_wall_us=10_000, batch_cpu_us=8_000, cores=2)
    assert capacity_us(info, p, True, 2) == pytest.approx((25_400 + 8_000) / 2)
    assert capacity_us({"steady": {"step_ms": 12.8, "cpu_ms": 25.4}}, p, True, 2) is not None
    assert capacity_us({}, p, True, 2) is None  # not timed: no bound


def test_measured_side_by_side_throughput_bounds_the_workers():
    # 16 cores where 15 processes side by side got 6.4 processes' work done (hardware threads,
    # neighbours, a quota): CPU-bound batches of 30 ms come no faster than 30/6.4 ms, not 30/15
    p = Producer(workers=15, batch_wall_us=30_000, batch_cpu_us=30_000, cores=16, parallel=6.4)
    assert p.spare == pytest.approx(6.4)
    assert p.period_us() == pytest.approx(30_000 / 6.4)
    assert p.workers_for(1_000) == 7  # past 6.4 processes' worth, another worker adds nothing
    # measured at or above the cores: the cores bind, as without the measure
    assert Producer(2, 30_000, 30_000, cores=4, parallel=3.4).spare == 3
    # waiting overlaps regardless: I/O-bound batches still scale with workers
    io = Producer(workers=4, batch_wall_us=40_000, batch_cpu_us=1_000, cores=16, parallel=2.0)
    assert io.period_us(8) == pytest.approx(5_000)
    info = {"loaders": [{"num_workers": 4}], "cores": 16, "parallel": {"procs": 15, "speedup": 6.4},
            "fetches": {"workers": {"batches": 10, "wall_ms": 300.0, "cpu_ms": 300.0}}}
    assert producer(info).parallel == 6.4


def test_batches_per_step_and_the_cap():
    p = Producer(workers=1, batch_wall_us=10_000, batch_cpu_us=0, cores=64, batches_per_step=4)
    assert p.period_us() == pytest.approx(40_000)  # gradient accumulation: 4 batches a step
    assert p.workers_for(10_000) == 4
    assert p.workers_for(1) == MAX_WORKERS


def test_read_from_run_json():
    info = {"loaders": [{"num_workers": 0}, {"num_workers": 4}], "cores": 8,
            "fetches": {"workers": {"batches": 100, "wall_ms": 2000.0, "cpu_ms": 500.0, "processes": 4}}}
    p = producer(info)
    assert (p.workers, p.batch_wall_us, p.batch_cpu_us, p.cores) == (4, 20_000, 5_000, 8)
    assert producer({"loaders": [{"num_workers": 0}], "fetches": {"main": {"batches": 3}}}) is None
    assert producer({"loaders": [{"num_workers": 2}]}) is None  # no pace measured: an older run


def test_no_fix_goes_below_what_the_loader_delivers():
    # a 20 ms step, of which the loader's pace is 18 ms: removing 10 ms of work gains 2 ms
    assert bounded(20_000, 10_000, floor_us(Change(), 18_000)) == 18_000
    # a fix that makes the step slower in the replay is no fix: the step stays as it is
    assert bounded(20_000, 25_000, 0.0) == 20_000
    # a loader fix sets the pace it would have; combined with another fix, that pace holds
    loader_fix = Change(remove_cpu=((0.0, 1.0),), floor_us=6_000)
    assert floor_us(loader_fix, 18_000) == 6_000
    assert bounded(20_000, 4_000, floor_us(loader_fix | Change(drop_syncs=frozenset({3})), 18_000)) == 6_000


def test_hot_lines_share_out_the_measured_batch_time_costliest_first():
    from types import SimpleNamespace

    from rules.dataloader_stall import hot_lines

    run = SimpleNamespace(loader_lines={("/p/data.py", 12): 600.0, ("/p/data.py", 13): 300.0, ("/p/aug.py", 4): 90.0,
                                        ("/p/data.py", 9): 10.0}, relpath=lambda p: p[3:])
    got = hot_lines(run, 500.0)  # the recorder's own cost doubled the lines' time: the batch took 0.5 ms
    assert [(h.path, h.line) for h in got] == [("data.py", 12), ("data.py", 13), ("aug.py", 4)]  # 1%: left out
    assert [round(h.ms, 3) for h in got] == [0.3, 0.15, 0.045]
    assert hot_lines(SimpleNamespace(loader_lines=None), 500.0) == ()


def test_a_loader_fix_counts_what_the_cores_got_done_side_by_side(tmp_path):
    # the H100 sample of examples/dataloader_stall.py (loading on the training thread), given the
    # machine facts a newer capture records: 16 cores, each batch's time on the training thread,
    # and what 15 processes got done side by side
    import json
    import shutil

    from conftest import SAMPLES

    from trainprof.engine import analyze

    def loader(parallel):
        d = tmp_path / str(parallel)
        shutil.copytree(os.path.join(SAMPLES, "dataloader_stall"), d)
        info = json.loads((d / "run.json").read_text())
        info.update(cores=16, fetches={"main": {"batches": 21, "wall_ms": 666.3, "cpu_ms": 626.9}})
        if parallel:
            info["parallel"] = {"procs": 15, "speedup": parallel}
        (d / "run.json").write_text(json.dumps(info))
        return next(f for f in analyze(str(d)).findings if f.rule == "dataloader-stall")

    counted, measured, enough = loader(None), loader(4.0), loader(15.5)
    assert "were measured to do 4 processes' work" in measured.estimate.basis
    assert "measured to do" not in counted.estimate.basis
    assert {(e.label, e.value) for e in measured.evidence} >= {("15 processes side by side did", 4.0)}
    assert not any("side by side" in e.label for e in counted.evidence)
    # 31.7 ms batches, 94% CPU: over 4 processes' worth they come ~3.7x slower than over 15
    assert measured.estimate.speedup < 0.6 * counted.estimate.speedup
    assert enough.estimate.speedup == pytest.approx(counted.estimate.speedup)  # the cores bind, as counted
