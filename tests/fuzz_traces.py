"""Malformed and odd runs, for the fuzz tests (tests/test_fuzz.py, bench/fuzz.py).

Each case starts from a real run (a GPU run of sample_traces/, a CPU run of tests/data/)
and breaks it the ways files break: fields deleted or of the wrong type, odd numbers
(zero, negative, huge durations), unknown categories, huge names, no steps, no GPU
events, a JSON array instead of an object, truncation, bad UTF-8, gzip damage; in the
trace, in run.json or in lines.json. The oracle: trainprof either analyzes the run and
renders every output, or raises its own one-line error (TrainprofError) -- nothing else.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import io
import json
import os
import shutil

from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASES = {
    "gpu": os.path.join(ROOT, "sample_traces", "host_alloc.fixed"),
    "cpu": os.path.join(ROOT, "tests", "data", "torch251_steps"),
}
_docs: dict = {}


def base(name: str) -> dict:
    """{'trace': doc, 'run': doc, 'lines': doc, 'trace_name': str, 'script': path|None} of a base run."""
    if name not in _docs:
        d = BASES[name]
        gz = next(f for f in sorted(os.listdir(d)) if f.endswith(".pt.trace.json.gz"))
        out = {"trace_name": gz, "trace": json.loads(gzip.decompress(open(os.path.join(d, gz), "rb").read()))}
        for key, fname in (("run", "run.json"), ("lines", "lines.json")):
            p = os.path.join(d, fname)
            out[key] = json.load(open(p)) if os.path.exists(p) else None
        out["script"] = next((os.path.join(d, f) for f in os.listdir(d) if f.endswith(".py")), None)
        _docs[name] = out
    return _docs[name]


# -- values ----------------------------------------------------------------------------
ODD_NUMBERS = st.sampled_from([0, -1, -1e9, 1e18, 2 ** 63 - 1, -(2 ** 63), 2 ** 64, 1e308, -1e308, 0.5, 1e-300])
SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=False)
           | ODD_NUMBERS | st.text(max_size=20)
           | st.sampled_from(["", "X", "M", "cpu_op", "kernel", "ProfilerStep#3", "\u2603" * 3, "a" * 100_000,
                              "</script><script>alert(1)</script>", "{{ 7 * 7 }}", "\ud800"]))
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=6)
EVENT_FIELDS = ["ph", "name", "cat", "pid", "tid", "ts", "dur", "args", "id", "bp"]
ARG_FIELDS = ["correlation", "External id", "Python id", "Python parent id", "stream", "bytes", "name",
              "Input Dims", "device", "Sequence number"]


# -- mutations of the parsed documents ----------------------------------------------------
@st.composite
def _edit_tree(draw, doc):
    """Delete or replace one node, found by a random walk down from the root."""
    if not isinstance(doc, (dict, list)) or not doc:
        return draw(VALUES)
    node = doc
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return doc
        k = draw(st.sampled_from(keys)) if len(keys) < 50 else keys[draw(st.integers(0, len(keys) - 1))]
        child = node[k]
        if isinstance(child, (dict, list)) and child and draw(st.integers(0, 2)):
            node = child
            continue
        if isinstance(node, dict) and draw(st.booleans()):
            del node[k]
        else:
            node[k] = draw(VALUES)
        return doc


@st.composite
def _edit_events(draw, doc):
    """Break a few events' fields, or the whole trace in one of the ways traces break."""
    events = doc.get("traceEvents") if isinstance(doc, dict) else None
    if not isinstance(events, list) or not events:
        return doc
    kind = draw(st.sampled_from(["field", "field", "args", "odd_numbers", "odd_numbers", "odd_numbers",
                                 "odd_strings", "odd_strings", "no_steps", "cpu_only", "zero_dur",
                                 "negative_dur", "unknown_cats", "huge_names", "shuffle", "duplicate",
                                 "drop_key", "few_events", "clock_jump"]))
    if kind in ("field", "args"):
        for _ in range(draw(st.integers(1, 5))):
            e = events[draw(st.integers(0, len(events) - 1))]
            if not isinstance(e, dict):
                continue
            if kind == "args":
                a = e.setdefault("args", {})
                if isinstance(a, dict):
                    a[draw(st.sampled_from(ARG_FIELDS))] = draw(VALUES)
                continue
            f = draw(st.sampled_from(EVENT_FIELDS))
            if draw(st.booleans()):
                e.pop(f, None)
            else:
                e[f] = draw(VALUES)
    elif kind == "odd_numbers":  # right type, odd value: the analyses, not the decoder, meet them
        for _ in range(draw(st.integers(1, 20))):
            e = events[draw(st.integers(0, len(events) - 1))]
            if isinstance(e, dict):
                e[draw(st.sampled_from(["ts", "dur", "pid", "tid"]))] = draw(ODD_NUMBERS | st.floats(-1e6, 1e16))
                if isinstance(e.get("args"), dict) and draw(st.booleans()):
                    e["args"][draw(st.sampled_from(["correlation", "External id", "stream", "bytes"]))] = \
                        draw(st.integers(-(2 ** 63), 2 ** 63 - 1))
    elif kind == "odd_strings":
        for _ in range(draw(st.integers(1, 20))):
            e = events[draw(st.integers(0, len(events) - 1))]
            if isinstance(e, dict):
                e[draw(st.sampled_from(["name", "cat", "ph"]))] = draw(
                    st.text(max_size=30) | st.sampled_from(["ProfilerStep#", "ProfilerStep#-1", "ProfilerStep#x",
                                                            "ProfilerStep#99999999999999999999", "cudaMemcpyAsync",
                                                            "cudaStreamSynchronize", "enumerate(DataLoader)#",
                                                            "Optimizer.step#", "kernel", "gpu_memcpy", "X", "B"]))
    elif kind == "no_steps":
        doc["traceEvents"] = [e for e in events if not isinstance(e, dict) or "ProfilerStep" not in str(e.get("name"))]
    elif kind == "cpu_only":
        doc["traceEvents"] = [e for e in events
                              if not isinstance(e, dict) or e.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset")]
    elif kind in ("zero_dur", "negative_dur"):
        for e in events:
            if isinstance(e, dict) and "dur" in e and draw(st.integers(0, 3)) == 0:
                e["dur"] = 0 if kind == "zero_dur" else -abs(e["dur"]) - 1
    elif kind == "unknown_cats":
        for e in events:
            if isinstance(e, dict) and draw(st.integers(0, 4)) == 0:
                e["cat"] = f"mystery_{draw(st.integers(0, 5))}"
    elif kind == "huge_names":
        for _ in range(draw(st.integers(1, 20))):
            e = events[draw(st.integers(0, len(events) - 1))]
            if isinstance(e, dict):
                e["name"] = "n" * draw(st.sampled_from([10_000, 1_000_000]))
    elif kind == "shuffle":
        order = draw(st.permutations(range(min(len(events), 200))))
        doc["traceEvents"] = [events[i] for i in order] + events[200:]
    elif kind == "duplicate":
        doc["traceEvents"] = events + events[: draw(st.integers(1, len(events)))]
    elif kind == "drop_key":
        doc.pop(draw(st.sampled_from(list(doc))), None)
    elif kind == "few_events":
        k = draw(st.integers(0, 5))
        doc["traceEvents"] = events[:k]
    elif kind == "clock_jump":
        i = draw(st.integers(0, len(events) - 1))
        for e in events[i:]:
            if isinstance(e, dict) and isinstance(e.get("ts"), (int, float)):
                e["ts"] = e["ts"] + draw(st.sampled_from([-1e12, 1e12, -1e6]))
    return doc


# -- bytes -------------------------------------------------------------------------------
def _dumps(doc) -> bytes:
    return json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def _damage(draw, data: bytes, gz: bool) -> bytes:
    kind = draw(st.sampled_from(["none"] * 8 + ["truncate", "bad_utf8", "flip", "array", "scalar", "empty"]))
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "bad_utf8":
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x00"])) + data[i:]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, max(len(data) - 1, 0)))
            data = data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1:]
    elif kind == "array":
        data = b"[" + data + b"]"
    elif kind == "scalar":
        data = draw(st.sampled_from([b"null", b"42", b'"trace"', b"true", b"[]", b"{}"]))
    elif kind == "empty":
        data = b""
    if gz:
        z = gzip.compress(data, compresslevel=1)
        zkind = draw(st.sampled_from(["ok"] * 6 + ["truncate", "flip", "trailer"]))
        if zkind == "truncate":
            z = z[: draw(st.integers(0, len(z)))]
        elif zkind == "flip":
            i = draw(st.integers(0, len(z) - 1))
            z = z[:i] + bytes([z[i] ^ 0xFF]) + z[i + 1:]
        elif zkind == "trailer":
            z = z + b"garbage"
        return z
    return data


# -- a whole broken run ---------------------------------------------------------------------
class Case(tuple):
    """(base name, files: {name: bytes}, as_dir), shown by its files' sizes and heads: a
    failing case's files are written out by the test for a closer look."""

    def __repr__(self) -> str:
        name, files, as_dir = self
        heads = {f: f"{len(b)} bytes: {b[:80]!r}" for f, b in files.items()}
        return f"Case(base={name!r}, as_dir={as_dir}, files={heads})"


@st.composite
def broken_runs(draw):
    """Case(base name, files: {name: bytes}, as_dir): a run directory's files, or a bare trace."""
    name = draw(st.sampled_from(sorted(BASES)))
    b = base(name)
    docs = {k: copy.deepcopy(b[k]) for k in ("trace", "run", "lines")}
    target = draw(st.sampled_from(["trace", "trace", "trace", "run", "lines", "several"]))
    for part in (["trace", "run", "lines"] if target == "several" else [target]):
        if docs[part] is None:
            continue
        for _ in range(draw(st.integers(1, 3))):
            docs[part] = draw(_edit_events(docs[part])) if part == "trace" and draw(st.booleans()) \
                else draw(_edit_tree(docs[part]))
    files = {}
    gz_name = b["trace_name"]
    gz = draw(st.booleans())
    tname = gz_name if gz else gz_name[:-3]
    files[tname] = draw(_damage(_dumps(docs["trace"]), gz))
    for part, fname in (("run", "run.json"), ("lines", "lines.json")):
        if docs[part] is not None:
            files[fname] = draw(_damage(_dumps(docs[part]), False)) if part == target else _dumps(docs[part])
    as_dir = draw(st.booleans()) or target in ("run", "lines")
    return Case((name, files, as_dir))


def write_run(tmp: str, name: str, files: dict, as_dir: bool) -> tuple[str, str | None]:
    """Write the files; return (target to analyze, script to pass or None)."""
    script = base(name)["script"]
    if as_dir:
        for f, data in files.items():
            with open(os.path.join(tmp, f), "wb") as fh:
                fh.write(data)
        if script:
            shutil.copy(script, tmp)
        return tmp, None
    tname = next(f for f in files if ".pt.trace.json" in f)
    path = os.path.join(tmp, tname)
    with open(path, "wb") as fh:
        fh.write(files[tname])
    return path, script


def analyze_and_render(target: str, script: str | None, out: str) -> str:
    """'ok' when the run is analyzed and every output rendered; 'error: ...' for
    trainprof's own error. Anything else raised is a bug, and propagates."""
    from trainprof.engine import analyze
    from trainprof.errors import TrainprofError
    from trainprof.report import html, jsonout, terminal
    from trainprof.report.prepare import prepare

    try:
        a = analyze(target, script=script)
    except TrainprofError as e:
        assert e.message and "\n" not in e.message.strip(), e.message
        return f"error: {e.message}"
    rep = prepare(a)
    jsonout.write(rep, os.path.join(out, "analysis.json"))
    html.write(rep, os.path.join(out, "report.html"))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        terminal.render(rep)
    return "ok"
