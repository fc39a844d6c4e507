"""Fuzzing the trace loader, the rules and the renderers with broken runs (tests/fuzz_traces.py).

The suite runs FUZZ_EXAMPLES cases (default 150, derandomized: CI sees the same cases each
time); `python bench/fuzz.py` runs thousands with fresh seeds and counts the outcomes.
"""
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings

from fuzz_traces import analyze_and_render, broken_runs, write_run

N = int(os.environ.get("FUZZ_EXAMPLES", 150))
OUTCOMES: dict = {}


@pytest.mark.slow
@settings(max_examples=N, deadline=None, derandomize=not os.environ.get("FUZZ_RANDOM"),
          suppress_health_check=list(HealthCheck), database=None)
@given(broken_runs())
def test_broken_runs_give_an_analysis_or_one_clear_error(case):
    name, files, as_dir = case
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "run")
        out = os.path.join(tmp, "out")
        os.makedirs(run)
        os.makedirs(out)
        target, script = write_run(run, name, files, as_dir)
        try:
            outcome = analyze_and_render(target, script, out)
        except Exception:
            # keep the failing run for a look: FUZZ_KEEP=DIR
            keep = os.environ.get("FUZZ_KEEP")
            if keep:
                import shutil
                shutil.rmtree(keep, ignore_errors=True)
                shutil.copytree(run, keep)
            raise
    key = "ok" if outcome == "ok" else "error"
    OUTCOMES[key] = OUTCOMES.get(key, 0) + 1


def _copy_run(tmp_path, name="host_alloc.fixed"):
    import shutil

    from conftest import SAMPLES

    d = tmp_path / name
    shutil.copytree(os.path.join(SAMPLES, name), d)
    return d


def test_cli_damaged_run_json_is_one_line_error(tmp_path):
    from conftest import run_cli

    d = _copy_run(tmp_path)
    (d / "run.json").write_text('{"active_steps": "seven", "schedule": [1, 2]}')
    r = run_cli("report", str(d), "-q")
    assert r.returncode == 3 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("trainprof: error:") and "run.json" in r.stderr and "active_steps" in r.stderr


def test_cli_damaged_lines_json_still_analyzes_without_lines(tmp_path):
    from conftest import run_cli

    d = _copy_run(tmp_path)
    (d / "lines.json").write_text('{"files": ["a.py"], "events": [[1, 2, 3, 9, 5]]}')  # file index 9 of 1
    r = run_cli("report", str(d), "--json", str(tmp_path / "a.json"), "-q")
    assert r.returncode == 0, r.stderr
    import json

    notes = json.loads((tmp_path / "a.json").read_text())["notes"]
    assert any("lines.json is damaged" in n for n in notes), notes


def test_cli_array_and_bad_utf8_traces_are_one_line_errors(tmp_path):
    from conftest import run_cli

    for name, data in (("a.pt.trace.json", b'[{"ph": "X"}]'), ("b.pt.trace.json", b'\xff{"traceEvents": []}'),
                       ("c.pt.trace.json", b'{"traceEvents": [{"ph": "X", "ts": "soon"}]}')):
        p = tmp_path / name
        p.write_bytes(data)
        r = run_cli("report", str(p), "-q")
        assert r.returncode == 3 and r.stderr.startswith("trainprof: error:") and "Traceback" not in r.stderr, r.stderr
