"""`trainprof tensorboard`: the real TensorBoard and profiler plugin, over HTTP and in chromium."""
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import SAMPLES

pytestmark = pytest.mark.slow  # a TensorBoard server per test

pytest.importorskip("torch_tb_profiler", reason="the profiler plugin is not installed: pip install -e '.[tensorboard]'")
RUN = os.path.join(SAMPLES, "dataloader_stall")  # an H100 run that waits on its loader ~90% of the step
API = "/data/plugin/pytorch_profiler"


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _wait_loaded(base: str, run: str, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            r = _get(base + API + "/runs")
            if run in r["runs"] and not r["loading"]:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{run} not loaded by TensorBoard in {timeout} s")


def _overview(base: str, run: str) -> dict:
    worker = _get(f"{base}{API}/workers?run={run}&view=Overview")[0]
    span = _get(f"{base}{API}/spans?run={run}&worker={worker}")[0]
    return _get(f"{base}{API}/overview?run={run}&worker={worker}&span={span}")


def _share(overview: dict, part: str) -> float:
    return next(c["extra"] for c in overview["performance"][0]["children"] if c["name"] == part)


def _serve(run: str):
    # a session of its own: whatever it leaves behind, _gone() finds and ends by its group
    p = subprocess.Popen([sys.executable, "-m", "trainprof.cli", "tensorboard", run], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    line = p.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+)/#pytorch_profiler", line)
    assert m, line + p.stderr.read() if p.poll() is not None else line
    return p, m.group(1)


def _left(p) -> list[str]:
    """Running processes of p's process group (p started a session), p itself excepted (an
    exited one not yet reaped -- a zombie -- runs nothing)."""
    r = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(p.pid)], capture_output=True, text=True)
    return [q for q, stat in (ln.split() for ln in r.stdout.splitlines()) if q != str(p.pid) and "Z" not in stat]


def _gone(p) -> None:
    """Stop p as a user does (SIGINT), then end what is left of its group."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


@pytest.fixture(scope="module")
def server():
    p, base = _serve(RUN)
    yield p, base
    _gone(p)


def test_distributed_run_one_worker_per_rank_and_the_plugins_wait_times():
    """A 2-GPU run (one trace per rank): the plugin's Distributed view loads, and its own
    synchronizing time agrees with trainprof on who waits (rank 0 waits for the straggler)."""
    from trainprof.engine import analyze
    from trainprof.report.prepare import prepare

    p, base = _serve(os.path.join(SAMPLES, "ddp_accum"))
    try:
        _wait_loaded(base, "ddp_accum")
        assert "Distributed" in _get(f"{base}{API}/views?run=ddp_accum")
        workers = _get(f"{base}{API}/workers?run=ddp_accum&view=Overview")
        assert sorted(w.split("_")[0] for w in workers) == ["rank0", "rank1"]
        span = _get(f"{base}{API}/spans?run=ddp_accum&worker=All")[0]
        wait = _get(f"{base}{API}/distributed/waittime?run=ddp_accum&worker=All&span={span}")["data"]["all"]
        sync = {w.split("_")[0]: v[1] for w, v in wait.items()}  # [data transfer, synchronizing] µs
        ours = {f"rank{r['rank']}": r["waited_ms"] for r in prepare(analyze(os.path.join(SAMPLES, "ddp_accum"))).ranks}
        assert sync["rank0"] > 10 * max(sync["rank1"], 1.0) and ours["rank0"] > 10 * max(ours["rank1"], 0.1)
    finally:
        _gone(p)


def test_run_and_its_dataloader_time_over_http(server):
    _, base = server
    _wait_loaded(base, "dataloader_stall")
    assert "Overview" in _get(f"{base}{API}/views?run=dataloader_stall")
    ov = _overview(base, "dataloader_stall")
    assert _share(ov, "DataLoader") > 50  # the plugin now sees the loader spans
    assert abs(sum(c["extra"] for c in ov["performance"][0]["children"]) - 100) < 1  # the step breakdown
    assert "DataLoader" in ov["recommendations"]


def test_the_plugin_alone_shows_no_dataloader_time():
    """The upstream defect the patch exists for: a plain TensorBoard on the same run says 0%."""
    from trainprof.report.tensorboard import free_port, logdir_for

    port = free_port()
    env = dict(os.environ)
    env.pop("TORCH_PROFILER_START_METHOD", None)
    p = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", logdir_for(RUN), "--host", "127.0.0.1",
                          "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                         start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_loaded(base, "dataloader_stall")
        assert _share(_overview(base, "dataloader_stall"), "DataLoader") == 0
    finally:
        _gone(p)


def test_overview_renders_offline_in_chromium(server, tmp_path):
    from cdp import BINARY, Browser

    if BINARY is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    _, base = server
    _wait_loaded(base, "dataloader_stall")
    b = Browser(str(tmp_path / "profile"))
    try:
        b.goto(base + API + "/index.html")  # the plugin's page (TensorBoard shows it in a frame)
        assert b.wait_for("document.body.innerText.includes('Execution Summary')", 60)
        # the loader's share, in the summary table (filled in after the heading: wait for it)
        b.wait_for(r"/DataLoader\s+\d+\s+[5-9]\d/.test(document.body.innerText)", 30)
        text = b.js("document.body.innerText")
        assert re.search(r"DataLoader\s+\d+\s+[5-9]\d", text)
        assert "needs Google Charts" in text  # no network here: charts say so instead of spinning
        errors = [c for c in b.console if c["method"] == "Runtime.exceptionThrown"
                  or c["params"].get("type") == "error"]
        assert errors == []
        b.screenshot(str(tmp_path / "overview.png"))
        assert os.path.getsize(tmp_path / "overview.png") > 20_000
    finally:
        b.close()


def test_ctrl_c_stops_it(server):
    p, _ = server
    assert _left(p)  # the plugin's loader processes
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 0 and "stopped" in out
    time.sleep(1)
    assert _left(p) == []  # they go with it


def test_sigterm_stops_it_and_its_loaders():
    p, base = _serve(RUN)
    try:
        _wait_loaded(base, "dataloader_stall")
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
        time.sleep(1)
        assert p.returncode == 0 and "stopped" in out and _left(p) == []
    finally:
        _gone(p)


def test_bad_target_one_line_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "trainprof.cli", "tensorboard", str(tmp_path)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "no runs here" in r.stderr and "Traceback" not in r.stderr


def test_sigkill_leaves_no_server_or_loader_behind():
    """Issue 20 (7): killed by SIGKILL (no handler runs), `trainprof tensorboard` takes its
    loader processes with it (parent-death signal) and starts no separate data server."""
    p, base = _serve(RUN)
    try:
        _wait_loaded(base, "dataloader_stall")
        p.kill()
        p.wait(timeout=30)
        end = time.monotonic() + 10  # a bound on the wait: they go with it
        while _left(p) and time.monotonic() < end:
            time.sleep(0.2)
        assert _left(p) == []
    finally:
        _gone(p)
