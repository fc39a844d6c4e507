import gzip
import os

import numpy as np
import pytest

from conftest import SAMPLES
from trainprof.errors import TraceError
from trainprof.capture.rundir import resolve
from trainprof.trace import load_trace
from trainprof.trace import measures as M


def sample_trace(name):
    return resolve(os.path.join(SAMPLES, name))[1]


def test_loads_real_gpu_trace_into_columns():
    t = load_trace(sample_trace("item_sync"))
    assert t.has_cuda
    assert "H100" in t.device_name
    assert len(t) == len(t.ts) == len(t.name_id) == len(t.corr)
    assert np.all(np.diff(t.ts) >= 0)  # sorted by start
    kernels = t.cat_mask("kernel")
    assert (t.corr[kernels] >= 0).all()  # every kernel links to its launch


def test_steps_are_the_recorded_window():
    t = load_trace(sample_trace("item_sync"))
    st = M.steps(t, [7, 8, 9])
    assert list(st.num) == [8, 9]  # the first recorded step carries the profiler's start-up: left out
    assert list(M.steps(t, [8, 9]).num) == [8, 9]  # two steps are both kept
    assert np.all(st.end <= np.roll(st.start, -1)[:-1].tolist() + [np.inf])  # in order, not overlapping


def test_union_length_counts_overlap_once():
    s = np.array([0.0, 5.0, 20.0])
    e = np.array([10.0, 12.0, 25.0])
    assert M.union_length(s, e) == 17.0
    assert M.union_length(s, e, 6.0, 22.0) == 8.0


def test_truncated_gzip_is_a_clear_error(tmp_path):
    data = open(sample_trace("host_alloc"), "rb").read()
    bad = tmp_path / "x.pt.trace.json.gz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError, match="truncated or corrupt gzip"):
        load_trace(str(bad))


def test_truncated_json_is_a_clear_error(tmp_path):
    raw = gzip.decompress(open(sample_trace("host_alloc"), "rb").read())
    bad = tmp_path / "x.pt.trace.json"
    bad.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(TraceError, match="truncated|not a Kineto trace"):
        load_trace(str(bad))


def test_not_a_trace(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("[1, 2, 3]")
    with pytest.raises(TraceError, match="not a Kineto trace"):
        load_trace(str(p))


def test_late_profiler_steps_start_at_trainprofs_anchor():
    # A real CPU run of tests/scripts/two_items.py under torch 2.5.1 (Python 3.12): that
    # torch starts ProfilerStep#N at the optimizer step, after the step's two .item() calls.
    d = os.path.join(os.path.dirname(__file__), "data", "torch251_steps")
    t = load_trace(resolve(d)[1])
    items = t.ts[t.name_mask(lambda n: n == "aten::item")]
    spans = t.name_mask(lambda n: n.startswith("ProfilerStep#"))
    assert (t.ts[spans].min() > items.min())  # the raw span misses the first step's items
    st = M.steps(t, [4, 5])
    inside = [(items >= a) & (items < b) for a, b in zip(st.start, st.end)]
    assert [int(x.sum()) for x in inside] == [2, 2]  # each step holds its two .item() calls


def test_load_reports_progress_by_chunk_and_phase(tmp_path, monkeypatch):
    import gzip

    from trainprof.engine import analyze
    from trainprof.trace import load

    monkeypatch.setattr(load, "CHUNK", 16 << 10)  # many chunks from a small sample
    run = os.path.join(SAMPLES, "item_sync")
    seen = []
    a = analyze(run, progress=lambda *p: seen.append(p))
    reads = [p for p in seen if p[0] == "reading"]
    assert len(reads) > 3 and all(x[1] <= y[1] for x, y in zip(reads, reads[1:]))
    assert abs(reads[-1][1] - reads[-1][2]) < 1e-9  # the whole file
    phases = [p[0] for p in seen]
    assert phases.index("decoding") > phases.index("reading") and "building" in phases
    rules = [p for p in seen if p[0] == "rules"]
    assert rules[-1][1] == rules[-1][2] == len(rules) and phases[-1] == "estimating"
    assert a.findings  # the same analysis with or without a listener
    # plain JSON reads the same way, and gives the same bytes
    gz = next(f for f in os.listdir(run) if f.endswith(".gz"))
    raw = gzip.decompress(open(os.path.join(run, gz), "rb").read())
    plain = tmp_path / "t.pt.trace.json"
    plain.write_bytes(raw)
    assert bytes(load.read_bytes(str(plain))) == raw == bytes(load.read_bytes(os.path.join(run, gz)))
