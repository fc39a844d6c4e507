"""`trainprof analyze` on the shapes user scripts come in: each case runs the real CLI on a
small script of tests/scripts/ and checks what the user sees (the message, the exit code) and
what the run leaves (the run directory, processes).

What a step is: the first optimizer whose step() runs becomes the pacer (capture/child.py); a
training step runs from one of its step() calls to the next, and other optimizers' steps fall
inside it. With --step-marker backward, each backward() ends a step instead.

Covered in tests/test_cli_cpu.py, not repeated here: a script raising at import
(raises_at_import.py), a plain return before the window ends (too_short.py), a script that
never steps (never_steps.py: the timeout's message). hangs.py runs here again, with a short
timeout, for what the timeout leaves behind.
"""
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import OURS, SCRIPTS, run_cli

# 1 step to start, 3 timed unprofiled, 3 under the line recorder (the first not kept), 1 profiler
# warm-up, 2 recorded: steps 1..9 of 9; then 3 more timed after the trace.
SCHEDULE = ("--wait", "3", "--settle", "0", "--warmup", "1", "--active", "2")

pytestmark = [pytest.mark.slow,  # scripts run end to end, each to its failure
              pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc to see processes")]


def analyze(tmp_path, script, *args, extra=(), cwd=None):
    out = tmp_path / "run"
    r = run_cli("analyze", "--run-dir", str(out), *SCHEDULE, *extra, os.path.join(SCRIPTS, script),
                *args, cwd=cwd)
    return r, out


def one_line_error(r, pattern, code=2):
    """A clean failure: trainprof's one line first, no traceback of trainprof's own."""
    assert r.returncode == code, (r.returncode, r.stderr)
    first = r.stderr.strip().splitlines()[0]
    assert first.startswith("trainprof: error:"), r.stderr
    assert pattern in first, first
    assert OURS not in r.stderr and "internal error" not in r.stderr, r.stderr
    return first


def alive(out):
    """The run's live processes (zombies aside): the child's command line names
    RUN_DIR/capture-config.json (trainprof's own names RUN_DIR alone), and its DataLoader
    workers are forks of it."""
    text = os.path.join(str(out), "capture-config.json")
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile
        if text in cmd and state not in ("Z", "X"):
            found.append((int(pid), cmd))
    return found


def nothing_left(out):
    """A failed run leaves nothing that looks like a run -- the script's output alone -- and no
    process of it running."""
    assert sorted(os.listdir(out)) == ["output.log"]
    assert alive(out) == []


def recorded_steps(out):
    """{step number: Counter of the op names inside it, in its process}, over the steps as
    trainprof delimits them (torch 2.5 on Python 3.12 ends ProfilerStep# spans early, and under
    another tid than the ops: trainprof's own anchors give the true step edges)."""
    from trainprof.capture.rundir import resolve
    from trainprof.trace import load_trace
    from trainprof.trace import measures as M

    trace = load_trace(resolve(str(out))[1])
    st = M.steps(trace, json.loads((out / "run.json").read_text()).get("active_steps"))
    steps = {}
    for num, a, b in zip(st.num.tolist(), st.start.tolist(), st.end.tolist()):
        inside = (trace.pid == st.pid) & (trace.ts >= a) & (trace.ts < b)
        steps[num] = Counter(trace.name(i) for i in inside.nonzero()[0].tolist())
    return steps


def assert_analysed(r, out, steps=2):
    assert r.returncode == 0, r.stderr
    a = json.loads((out / "analysis.json").read_text())
    assert a["steps"]["count"] == steps and a["steps"]["unprofiled_ms"] > 0
    assert (out / "report.html").exists() and not (out / "capture-config.json").exists()
    assert alive(out) == []
    return a


# -- 2. raises inside the profiled window, or after the trace --------------------------------------

def test_raises_while_the_profiler_records(tmp_path):
    # --at 8: after the optimizer step that starts the recording (step 8 of 9)
    r, out = analyze(tmp_path, "raises_in_window.py", "--at", "8")
    one_line_error(r, "raises_in_window.py raised RuntimeError: loss diverged at step 8 "
                      "(in step 8 of 9, while the profiler recorded; no trace was written)")
    assert 'raises_in_window.py", line 13' in r.stderr  # the user's traceback follows
    nothing_left(out)


def test_raises_after_the_trace_is_written(tmp_path):
    """The trace is complete; only the steady-state timing after it is lost: analysed, with a note."""
    r, out = analyze(tmp_path, "raises_in_window.py", "--at", "11")
    a = assert_analysed(r, out)
    assert any("raised RuntimeError: loss diverged at step 11 after the trace was written" in n
               for n in a["notes"]), a["notes"]
    assert json.loads((out / "run.json").read_text())["unprofiled_post_ms"] is None


# -- 3, 4. ending early: sys.exit, os._exit, killed ------------------------------------------------

@pytest.mark.parametrize("code", ["0", "3"])
def test_sys_exit_before_the_window_ends(tmp_path, code):
    r, out = analyze(tmp_path, "exits_early.py", code)
    one_line_error(r, f"exits_early.py exited (status {code}) after 3 of the 9 steps trainprof needs")
    nothing_left(out)


@pytest.mark.parametrize("how,says", [("exit", "exited (status 0)"), ("kill", "was killed by SIGKILL")])
def test_ends_abruptly_mid_run(tmp_path, how, says):
    t0 = time.monotonic()
    r, out = analyze(tmp_path, "os_exit.py", how, extra=("--timeout", "600"))
    assert time.monotonic() - t0 < 300  # no wait for the timeout (seconds, not minutes, however loaded the host)
    one_line_error(r, f"os_exit.py {says} after 4 of the 9 steps trainprof needs")
    nothing_left(out)


# -- 5. hangs: the timeout ends it, and all of it ---------------------------------------------------

def test_hang_is_stopped_at_the_timeout_with_nothing_left_running(tmp_path):
    t0 = time.monotonic()
    import torch

    limit = 30 if torch.version.cuda else 12  # a CUDA build of torch can take 10 s to import
    r, out = analyze(tmp_path, "hangs.py", extra=("--timeout", str(limit)))
    assert time.monotonic() - t0 < limit + 60  # stopped at the timeout, not after it
    one_line_error(r, f"timed out after {limit} s at step")
    assert alive(out) == []


# -- 6. no optimizer at all -------------------------------------------------------------------------

def test_forward_passes_only(tmp_path):
    r, out = analyze(tmp_path, "forward_only.py")
    one_line_error(r, "forward_only.py exited (status 0) without a single optimizer step")
    nothing_left(out)


# -- 7, 8. what a step spans ------------------------------------------------------------------------

def test_two_optimizers_a_step_is_one_iteration(tmp_path):
    """GAN: opt_d steps first and paces the steps; each recorded step holds one step of each."""
    r, out = analyze(tmp_path, "gan.py")
    assert_analysed(r, out)
    steps = recorded_steps(out)
    assert len(steps) == 2
    for ops in steps.values():
        assert ops["Optimizer.step#Adam.step"] == 2
        assert ops["aten::linear"] == 8  # G (2 layers) once, D (2 layers) on real, fake, fake
    run = json.loads((out / "run.json").read_text())
    assert len(run["unprofiled_step_ms"]) == 3 and len(run["profiled_step_ms"]) == 2


def test_gradient_accumulation_a_step_spans_k_batches(tmp_path):
    r, out = analyze(tmp_path, "grad_accum.py")
    assert_analysed(r, out)
    steps = recorded_steps(out)
    assert len(steps) == 2
    for ops in steps.values():
        assert ops["Optimizer.step#SGD.step"] == 1
        assert ops["aten::linear"] == 4  # ACCUM batches: forward and backward each
        assert ops["autograd::engine::evaluate_function: AddmmBackward0"] == 4


# -- 9. DataLoader workers ----------------------------------------------------------------------------

def test_dataloader_worker_crash(tmp_path):
    t0 = time.monotonic()
    r, out = analyze(tmp_path, "worker_crash.py", "crash", extra=("--timeout", "600"))
    assert time.monotonic() - t0 < 300  # no wait for the timeout
    one_line_error(r, "worker_crash.py raised ValueError in DataLoader worker process 0: corrupt sample 16 "
                      "(in step 4 of 12")
    assert "no trace was written" in r.stderr.splitlines()[0]
    assert 'worker_crash.py", line 17, in __getitem__' in r.stderr  # the worker's own frame
    nothing_left(out)  # no worker left either: os._exit leaves workers behind


def test_dataloader_workers_do_not_outlive_a_good_run(tmp_path):
    """trainprof stops the script by os._exit after the trace: its workers go with it."""
    r, out = analyze(tmp_path, "worker_crash.py")
    assert_analysed(r, out, steps=4)  # two whole bursts of its 2 workers are recorded  # no process of the run left
    assert [ld["num_workers"] for ld in json.loads((out / "run.json").read_text())["loaders"]] == [2]


# -- 10, 11, 12. how scripts are written ------------------------------------------------------------

def test_main_guard(tmp_path):
    r, out = analyze(tmp_path, "main_guard.py")
    assert_analysed(r, out)
    lines = json.loads((out / "lines.json").read_text())
    me = lines["files"].index(os.path.realpath(os.path.join(SCRIPTS, "main_guard.py")))
    # the line recorder saw the loop inside main(): run as __main__, not imported
    assert {ev[4] for ev in lines["events"] if ev[3] == me} & {9, 10, 11}


@pytest.mark.parametrize("dashes", [[], ["--"]])
def test_flags_after_the_script_reach_the_script(tmp_path, dashes):
    # --timeout is also trainprof's own option: after SCRIPT it is the script's (which checks
    # them), and a note says so; a `--` right after SCRIPT is dropped
    args = ["--flag", "value", "--timeout", "7", "--verbose"]
    r, out = analyze(tmp_path, "argv_flags.py", *dashes, *args)
    assert_analysed(r, out)
    assert json.loads((out / "run.json").read_text())["argv"] == args
    assert "trainprof: note: --timeout after SCRIPT goes to the script" in r.stderr


def test_script_importing_its_sibling_module_from_another_cwd(tmp_path):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    r, out = analyze(tmp_path, os.path.join("matrix_pkg", "train.py"), cwd=str(cwd))
    assert_analysed(r, out)
    run = json.loads((out / "run.json").read_text())
    assert run["cwd"] == str(cwd)
    # the sibling is the user's code too: the line recorder follows it
    lines = json.loads((out / "lines.json").read_text())
    helpers = lines["files"].index(os.path.realpath(os.path.join(SCRIPTS, "matrix_pkg", "helpers.py")))
    assert any(ev[3] == helpers for ev in lines["events"])


# -- 13. Ctrl-C ----------------------------------------------------------------------------------------

def _interrupt(tmp_path, fast_steps, when_line):
    """Start analyze on slow_trainer.py, send SIGINT (what Ctrl-C sends trainprof; the script
    runs in a session of its own) once the script printed when_line; return the result and the run
    directory. Left alone, the script would run for over an hour: it must stop within the wait."""
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "trainprof.cli", "analyze", "--run-dir", str(out), *SCHEDULE,
                          os.path.join(SCRIPTS, "slow_trainer.py"), str(fast_steps)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path),
                         env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    try:
        log, deadline = out / "output.log", time.monotonic() + 300
        while not (log.exists() and when_line in log.read_text().splitlines()):
            assert p.poll() is None and time.monotonic() < deadline, "the script never got there"
            time.sleep(0.05)
        pid = int(log.read_text().split()[1])  # "pid N"
        assert [q for q, _ in alive(out)] == [pid]  # (so that alive() can see it)
        time.sleep(0.2)  # let trainprof read what the script sent so far
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr), out


def test_ctrl_c_while_stepping(tmp_path):
    r, out = _interrupt(tmp_path, 0, "step 1")
    first = one_line_error(r, "interrupted in step ", code=130)
    assert f"the script was stopped before its trace was written ({out} is incomplete)" in first
    nothing_left(out)


def test_ctrl_c_after_the_trace_keeps_the_run(tmp_path):
    # 10 fast steps: the trace is written at the 10th optimizer step; the steps after it are slow
    r, out = _interrupt(tmp_path, 10, "step 9")
    first = one_line_error(r, "interrupted after the trace was written", code=130)
    assert f"`trainprof report {out}` analyzes it" in first
    assert alive(out) == []
    assert json.loads((out / "run.json").read_text())["unprofiled_post_ms"] is None
    r2 = run_cli("report", str(out))
    assert r2.returncode == 0, r2.stderr
    assert json.loads((out / "analysis.json").read_text())["steps"]["count"] == 2


def test_ctrl_c_while_analyzing_keeps_the_run(tmp_path):
    """Ctrl-C after the capture, while the trace is analysed (the real CLI, its analysis made to
    see the KeyboardInterrupt at once): the run is complete, and the message says how to use it."""
    out = tmp_path / "run"
    boot = ("import sys, trainprof.engine as engine\n"
            "def interrupted(*a, **k):\n    raise KeyboardInterrupt\n"
            "engine.analyze = interrupted\n"
            "from trainprof.cli import main\n"
            "sys.argv[0] = 'trainprof'\nmain()\n")
    r = subprocess.run([sys.executable, "-c", boot, "analyze", "--run-dir", str(out), *SCHEDULE,
                        os.path.join(SCRIPTS, "main_guard.py")], capture_output=True, text=True, timeout=120, check=False,
                       env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    first = one_line_error(r, "interrupted while analyzing; the run is saved", code=130)
    assert f"`trainprof report {out}` analyzes it" in first
    assert (out / "run.json").exists() and not (out / "analysis.json").exists()
    assert alive(out) == []
