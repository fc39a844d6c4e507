import gzip
import json
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
    assert phases.index("building") > phases.index("reading")  # streamed: pieces decode while it reads
    rules = [p for p in seen if p[0] == "rules"]
    assert rules[-1][1] == rules[-1][2] == len(rules) and phases[-1] == "estimating"
    assert a.findings  # the same analysis with or without a listener
    # plain JSON reads the same way, and gives the same bytes
    gz = next(f for f in os.listdir(run) if f.endswith(".gz"))
    raw = gzip.decompress(open(os.path.join(run, gz), "rb").read())
    plain = tmp_path / "t.pt.trace.json"
    plain.write_bytes(raw)
    assert bytes(load.read_bytes(str(plain))) == raw == bytes(load.read_bytes(os.path.join(run, gz)))


COLUMNS = ["name_id", "cat_id", "ts", "dur", "pid", "tid", "corr", "ext", "py_id", "py_parent", "stream", "nbytes"]


def _same_trace(a, b):
    assert a.names == b.names and a.cats == b.cats
    for c in COLUMNS:
        assert np.array_equal(getattr(a, c), getattr(b, c)), c
    assert a.thread_names == b.thread_names and a.meta == b.meta


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("run", ["item_sync", "dataloader_stall", "tuned"])
def test_streamed_pieces_give_the_whole_documents_columns(run, workers, monkeypatch):
    from trainprof.trace import load

    path = _trace_of(os.path.join(SAMPLES, run))
    whole = load._load_whole(path, None)
    # many small chunks and pieces, decoded here or in worker processes
    monkeypatch.setattr(load, "CHUNK", 64 << 10)
    monkeypatch.setattr(load, "PIECE", 256 << 10)
    monkeypatch.setattr(load, "_load_whole", _no_fallback)
    _same_trace(load.load_trace(path, workers=workers), whole)


def _no_fallback(*a):
    raise AssertionError("the streamed path fell back to decoding the whole document")


def _trace_of(run_dir):
    return os.path.join(run_dir, next(f for f in os.listdir(run_dir) if ".pt.trace.json" in f))


def _layouts(doc):
    """The same trace written as other writers might: (name, bytes, whether the streamed path must take it)."""
    ev = doc["traceEvents"]
    rest = {k: v for k, v in doc.items() if k != "traceEvents"}
    odd = [dict(ev[0], name="a}, {b"), dict(ev[1], name='}]"x'), *ev[2:]]  # braces inside strings
    yield "kineto", json.dumps(doc, indent=1).encode(), True
    yield "compact", json.dumps(doc, separators=(",", ":")).encode(), True
    yield "events first", json.dumps({"traceEvents": ev, **rest}).encode(), True
    yield "events only", json.dumps({"traceEvents": ev}).encode(), True
    yield "no events", json.dumps({**rest, "traceEvents": []}).encode(), True
    yield "nested }] after", json.dumps({**rest, "traceEvents": ev, "zz": [{"a": [{"b": 1}]}]}).encode(), True
    yield "strings with braces", json.dumps({**rest, "traceEvents": odd}).encode(), False
    yield "traceEvents inside a string first", json.dumps({"x": 'k "traceEvents": [', **doc}).encode(), False


def test_streamed_reader_takes_other_layouts_or_falls_back(tmp_path, monkeypatch):
    import gzip

    from trainprof.trace import load

    src = _trace_of(os.path.join(SAMPLES, "item_sync"))
    doc = json.loads(gzip.decompress(open(src, "rb").read()))
    whole_load = load._load_whole
    monkeypatch.setattr(load, "CHUNK", 16 << 10)
    monkeypatch.setattr(load, "PIECE", 32 << 10)
    for name, data, streamed in _layouts(doc):
        p = tmp_path / "t.pt.trace.json"
        p.write_bytes(data)
        expect = whole_load(str(p), None)
        fell_back = []
        monkeypatch.setattr(load, "_load_whole", lambda *a: fell_back.append(1) or whole_load(*a))
        _same_trace(load.load_trace(str(p), workers=1), expect)
        if streamed:
            assert not fell_back, name
        monkeypatch.setattr(load, "_load_whole", whole_load)
