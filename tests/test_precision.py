"""Calibration on the user's device (trainprof/capture/precision.py): the run's own heaviest
fp32 shapes are read from a real profile, timed in fp32/TF32/bf16 (on this CPU here: the same
code the child runs on a GPU), cached per device and torch version, and the ratios they give
replace the rule's table in the fp32-compute estimate (a GPU sample run from sample_traces/)."""

import json
import os
import shutil

import pytest
import torch
from conftest import SAMPLES
from torch.profiler import ProfilerActivity, profile

from trainprof.capture import precision as P
from trainprof.capture import rundir
from trainprof.engine import analyze


def _profile():
    conv, lin = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.Linear(64, 32)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as p:
        y, z = conv(torch.randn(2, 3, 16, 16)), lin(torch.randn(4, 64))
        (y.sum() + z.sum()).backward()
        torch.arange(12).reshape(3, 4) @ torch.arange(8).reshape(4, 2)  # integer: nothing bf16 would change
    return p


def test_shapes_of_a_real_profile():
    specs = P.shapes(_profile().events(), weight=lambda e: e.cpu_time_total)
    conv = [s for s in specs if s["cls"] == "conv"]
    assert conv == [dict(op="conv", dims=[[2, 3, 16, 16], [8, 3, 3, 3]], stride=[2, 2], padding=[1, 1],
                         dilation=[1, 1], groups=1, us=conv[0]["us"], count=1, cls="conv")]
    gemm = [s for s in specs if s["cls"] == "gemm"]
    assert {s["op"] for s in gemm} <= {"addmm", "mm"} and ["addmm", [[32], [4, 64], [64, 32]]] in [
        [s["op"], s["dims"]] for s in gemm]
    ev = next(e for e in _profile().events() if e.name == "aten::mm")
    if getattr(ev, "input_dtypes", None):  # (recorded from torch 2.6 on)
        assert all(s["dims"] != [[3, 4], [4, 2]] for s in gemm)  # the integer matmul is left out
    assert len(P.shapes(_profile().events(), top=1, weight=lambda e: e.cpu_time_total)) == 2  # one a class
    assert P.shapes(_profile().events()) == []  # no device time on a CPU run: nothing to time


def test_measured_once_then_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    specs = P.shapes(_profile().events(), weight=lambda e: e.cpu_time_total)
    first = P.measure(torch, specs, torch.device("cpu"), "test cpu/1")
    assert first["cached"] == 0 and len(first["shapes"]) == len(specs)
    assert all(s[f"{m}_us"] > 0 for s in first["shapes"] for m in ("fp32", "tf32", "bf16"))
    assert os.path.dirname(P.cache_path("test cpu/1", torch.__version__)) == str(tmp_path / "trainprof")
    again = P.measure(torch, specs, torch.device("cpu"), "test cpu/1")
    assert again["cached"] == len(specs) and again["shapes"] == first["shapes"]
    assert set(first["ratios"]) == {"gemm", "conv", "tf32"}


def test_ratios_weighted_by_the_runs_time():
    rows = [dict(cls="gemm", us=300, fp32_us=10, tf32_us=4, bf16_us=1),
            dict(cls="gemm", us=100, fp32_us=10, tf32_us=10, bf16_us=5),
            dict(cls="conv", us=50, fp32_us=8, tf32_us=4, bf16_us=2)]
    r = P.ratios(rows)
    assert r["gemm"] == pytest.approx((300 * 0.1 + 100 * 0.5) / 400)
    assert r["conv"] == pytest.approx(0.25)
    assert r["tf32"] == pytest.approx((300 * 0.25 + 100 * 0.5 + 50 * 0.5) / 450)


def _sample_with(tmp_path, name, doc):
    d = tmp_path / name
    shutil.copytree(os.path.join(SAMPLES, name), d)
    if doc is not None:
        (d / rundir.PRECISION_JSON).write_text(json.dumps(doc))
    return analyze(str(d), only={"fp32-compute"})


def test_the_devices_ratios_replace_the_table(tmp_path):
    table = _sample_with(tmp_path / "a", "fp32_transformer", None).findings[0]
    # a device on which bf16 gains less than the table says: the estimate follows it
    slow = _sample_with(tmp_path / "b", "fp32_transformer",
                        {"device": "Some GPU", "ratios": {"gemm": 0.5, "tf32": 0.9, "conv": 0.8}, "shapes": [{}] * 3})
    (f,) = slow.findings
    assert 1.0 < f.estimate.speedup < table.estimate.speedup
    assert "timed on Some GPU" in f.estimate.basis and "fp32 matmul 0.5" in f.estimate.basis
    # nonsense in the file is clamped; a failed calibration is said, and the table used
    wild = _sample_with(tmp_path / "c", "fp32_transformer", {"device": "x", "ratios": {"gemm": -3}})
    assert wild.findings[0].estimate.speedup >= table.estimate.speedup
    failed = _sample_with(tmp_path / "d", "fp32_transformer", {"error": "RuntimeError: out of memory"})
    assert failed.findings[0].estimate.speedup == pytest.approx(table.estimate.speedup)
    assert any("not timed on this device" in n for n in failed.notes)
    bad = _sample_with(tmp_path / "e", "fp32_transformer", {"ratios": "fast"})
    assert any("precision.json" in n for n in bad.notes)
