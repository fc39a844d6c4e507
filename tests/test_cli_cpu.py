"""`trainprof analyze` for real, on CPU, on the examples and on broken scripts."""
import json
import os
import re
import shutil
import pytest

from conftest import EXAMPLES, OURS, SAMPLES, SCRIPTS, run_cli


def analyze(tmp_path, script, *args, extra=()):
    out = tmp_path / "run"
    r = run_cli("analyze", "--run-dir", str(out), "--wait", "3", "--settle", "0", "--warmup", "1", "--active", "2",
                *extra, script, *args)
    return r, out


def findings(out):
    return json.loads((out / "analysis.json").read_text())


def test_logging_example_found_at_its_line_and_fixed_version_clean(tmp_path):
    r, out = analyze(tmp_path, os.path.join(EXAMPLES, "excessive_logging.py"), "--steps", "20")
    assert r.returncode == 0, r.stderr
    a = findings(out)
    top = a["findings"][0]
    assert (top["rule"], top["line"]) == ("excessive-logging", 29)  # add_histogram every step
    assert top["saving_ms"] > 0 and top["speedup"] > 1.05
    assert a["steps"]["unprofiled_ms"] > 0 and a["steps"]["count"] == 2
    assert a["estimate"]["combined_speedup"] >= top["speedup"]
    assert {s["rule"] for s in a["skipped"]} >= {"item-sync", "gpu-idle"}
    assert all(s["reason"] in ("no CUDA activity in this run", "not a distributed run (one trace)")
               for s in a["skipped"])
    # the run directory is in the TensorBoard plugin's layout
    assert list(out.glob("*.pt.trace.json.gz")) and (out / "run.json").exists() and (out / "lines.json").exists()
    # the last wait steps ran the line recorder without the profiler: each line's own correction;
    # after the --wait 3 steps: one recorder warm-up step (logged, outside the window), two kept
    unprof = json.loads((out / "lines.json").read_text())["unprofiled"]
    assert unprof["steps"] == 2 and unprof["events"] and unprof["events"][0][0] < unprof["start"] < unprof["end"]
    assert "line by line" in a["estimate"]["calibration"]
    assert "excessive-logging" in r.stdout and "examples/excessive_logging.py:29" in r.stdout
    page = (out / "report.html").read_text()
    assert "excessive-logging" in page and "writer.add_histogram(name, p_, step)" in page  # the source excerpt
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # self-contained

    r2, out2 = analyze(tmp_path / "f", os.path.join(EXAMPLES, "excessive_logging.fixed.py"), "--steps", "20")
    assert r2.returncode == 0, r2.stderr
    assert not [f for f in findings(out2)["findings"] if f["rule"] == "excessive-logging"]


@pytest.mark.slow
def test_loader_example(tmp_path):
    r, out = analyze(tmp_path, os.path.join(EXAMPLES, "dataloader_stall.py"), "--steps", "12")
    assert r.returncode == 0, r.stderr
    f = [f for f in findings(out)["findings"] if f["rule"] == "dataloader-stall"]
    assert len(f) == 1 and f[0]["line"] == 35  # the `for ... in enumerate(loader)` line
    ev = {e["label"]: e["value"] for e in f[0]["evidence"]}
    assert ev["loader"] == "single-process" and ev["share of the step"] > 30


def test_adjacent_item_lines_are_attributed_separately(tmp_path):
    """On CPU .item() is no sync, but the line recorder still tells the two lines apart."""
    from trainprof.engine import analyze as run_analysis
    import trainprof.engine as engine

    r, out = analyze(tmp_path, os.path.join(SCRIPTS, "two_items.py"))
    assert r.returncode == 0, r.stderr
    seen = {}
    orig = engine.estimate_all

    def spy(ctx, fs):
        tr = ctx.trace
        for i in (tr.name_mask(lambda n: n == "aten::item") & ctx.main).nonzero()[0]:
            seen.setdefault(ctx.script_line(int(i)), 0)
            seen[ctx.script_line(int(i))] += 1
        return orig(ctx, fs)

    engine.estimate_all = spy
    try:
        run_analysis(str(out))
    finally:
        engine.estimate_all = orig
    assert seen == {7: 2, 8: 2}  # two recorded steps, one .item() per line per step


@pytest.mark.slow
def test_script_sees_its_own_argv_and_path(tmp_path):
    r, out = analyze(tmp_path, os.path.join(SCRIPTS, "argv_and_path.py"), "--lr", "0.5", "two words")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "run.json").read_text())["argv"] == ["--lr", "0.5", "two words"]


def test_report_rereads_a_saved_run_without_running(tmp_path):
    run = tmp_path / "item_sync"
    shutil.copytree(os.path.join(SAMPLES, "item_sync"), run)
    (run / "analysis.json").unlink(missing_ok=True)
    r = run_cli("report", str(run), "--json", str(tmp_path / "a.json"))
    assert r.returncode == 0, r.stderr
    assert (run / "analysis.json").read_text() == (tmp_path / "a.json").read_text()
    assert (run / "report.html").stat().st_size > 1000
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["schema"] == 2 and a["device"].startswith("NVIDIA")
    assert {"count", "profiled_ms", "unprofiled_ms", "gpu_busy", "breakdown"} <= set(a["steps"])
    for f in a["findings"]:
        assert {"rule", "path", "line", "severity", "message", "evidence", "saving_ms", "speedup", "fix"} <= set(f)
    assert a["estimate"]["combined_speedup"] >= 1.0


def test_report_on_bare_trace_with_script():
    d = os.path.join(SAMPLES, "host_alloc")
    trace = next(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".pt.trace.json.gz"))
    r = run_cli("report", trace, "--script", os.path.join(d, "host_alloc.py"))
    assert r.returncode == 0, r.stderr
    assert "blocking-h2d" in r.stdout and "no line attribution" in r.stdout


def _one_line_error(r, pattern):
    assert r.returncode != 0
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("trainprof: error:"), r.stderr
    assert pattern in first, first
    assert OURS not in r.stderr  # no traceback of ours


def test_missing_script(tmp_path):
    _one_line_error(run_cli("analyze", str(tmp_path / "nope.py")), "script not found")


def test_script_raising_at_import_shows_its_traceback_tail(tmp_path):
    r, _ = analyze(tmp_path, os.path.join(SCRIPTS, "raises_at_import.py"))
    _one_line_error(r, "raised RuntimeError: dataset path /nope does not exist")
    assert "line 8" in r.stderr  # the tail of the user's traceback


@pytest.mark.slow
def test_script_without_optimizer_step(tmp_path):
    r, _ = analyze(tmp_path, os.path.join(SCRIPTS, "never_steps.py"), extra=("--timeout", "8"))
    _one_line_error(r, "no training step seen in 8 s")


@pytest.mark.slow
def test_script_that_hangs(tmp_path):
    r, _ = analyze(tmp_path, os.path.join(SCRIPTS, "hangs.py"), extra=("--timeout", "30"))
    # 30 s: a CUDA build of torch can take 10 s to import before the first step
    _one_line_error(r, "timed out after 30 s at step")


def test_script_exiting_before_the_window_ends(tmp_path):
    r, _ = analyze(tmp_path, os.path.join(SCRIPTS, "too_short.py"))
    _one_line_error(r, "exited (status 0) after 3 of the 9 steps")


def test_truncated_trace(tmp_path):
    src = os.path.join(SAMPLES, "host_alloc")
    gz = next(f for f in os.listdir(src) if f.endswith(".gz"))
    data = open(os.path.join(src, gz), "rb").read()
    bad = tmp_path / "cut.pt.trace.json.gz"
    bad.write_bytes(data[:5000])
    _one_line_error(run_cli("report", str(bad)), "truncated or corrupt gzip")


@pytest.mark.slow
def test_loader_configuration_as_run_and_prefetch_caveat(tmp_path):
    r, out = analyze(tmp_path, os.path.join(SCRIPTS, "loader_buffer.py"))
    assert r.returncode == 0, r.stderr
    run = json.loads((out / "run.json").read_text())
    workers = min(2, os.cpu_count() or 1)
    assert [(ld["num_workers"], ld["prefetch_factor"]) for ld in run["loaders"]] == [(workers, 16)]
    # 16 x workers queued batches outlast the 9 timed steps: the analysis must say so
    notes = findings(out)["notes"]
    assert any(f"queues up to {16 * workers} batches" in n and "--settle" in n for n in notes), notes


@pytest.mark.slow
def test_tuned_example_has_nothing_above_info_when_run(tmp_path):
    r, out = analyze(tmp_path, os.path.join(EXAMPLES, "tuned.py"), "--steps", "30")
    assert r.returncode == 0, r.stderr
    assert [(f["rule"], f["severity"]) for f in findings(out)["findings"] if f["severity"] != "info"] == []
