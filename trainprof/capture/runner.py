"""Start the child, show progress, enforce the timeout, turn failures into one line."""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace

from ..errors import CaptureError, Interrupted
from . import rundir


@dataclass
class CaptureOptions:
    wait: int = 5
    warmup: int = 2
    active: int = 3
    timeout: float = 300.0
    step_marker: str = "optimizer"
    with_stack: bool = True
    record_shapes: bool = True
    full_run: bool = False
    show_output: bool = False
    python: str = sys.executable
    retried: bool = False  # internal: this is the retry without stacks after a profiler failure


def _tail(path: str, n: int = 12) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _user_files(script: str) -> list[str]:
    """The user's own code: the script and the .py files beside it (sibling modules)."""
    d = os.path.dirname(os.path.abspath(script))
    files = [os.path.abspath(script)]
    try:
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if name.endswith(".py") and p not in files:
                files.append(p)
    except OSError:
        pass
    return files


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def capture(script: str, args: list[str], run_dir: str, opts: CaptureOptions, progress=None) -> dict:
    """Run `script args` under the profiler into run_dir; return run.json's content."""
    if not os.path.isfile(script):
        raise CaptureError(f"script not found: {script}")
    if min(opts.wait, opts.active) < 1 or opts.warmup < 0:
        raise CaptureError("--wait and --active must be at least 1, --warmup at least 0")
    script = os.path.abspath(script)
    read_fd, write_fd = os.pipe()
    cfg = {
        "script": script,
        "args": list(args),
        "run_dir": os.path.abspath(run_dir),
        "wait": opts.wait,
        "warmup": opts.warmup,
        "active": opts.active,
        "step_marker": opts.step_marker,
        "with_stack": opts.with_stack,
        "record_shapes": opts.record_shapes,
        "full_run": opts.full_run,
        "user_files": _user_files(script),
        "msg_fd": write_fd,
    }
    cfg_path = os.path.join(run_dir, "capture-config.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    log_path = os.path.join(run_dir, rundir.OUTPUT_LOG)
    log = None if opts.show_output else open(log_path, "wb")
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The child imports trainprof from wherever this process did, then takes that
    # directory off sys.path again: in a source checkout it would put the repo's
    # own folders (tests/, examples/) on the user's import path.
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    boot = (f"import sys; sys.path.insert(0, {pkg_root!r}); "
            "from trainprof.capture.child import main; del sys.path[0]; main()")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            [opts.python, "-c", boot, cfg_path],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            pass_fds=(write_fd,),
            env=env,
            start_new_session=True,  # so a timeout can end the script and its workers together
        )
    except OSError as e:
        raise CaptureError(f"cannot start {opts.python}: {e.strerror}") from None
    finally:
        os.close(write_fd)
        if log:
            log.close()
    done, post, error, exited, buf = None, None, None, None, b""
    steps_seen, phase = 0, "starting"
    total = opts.wait + opts.warmup + opts.active
    name = os.path.basename(script)
    interrupted = False
    try:
        while True:
            left = opts.timeout - (time.monotonic() - t0)
            if left <= 0:
                _kill(proc)
                if done is not None:
                    break  # the trace is written; only the steady-state timing was cut short
                if steps_seen == 0:
                    raise CaptureError(
                        f"no training step seen in {opts.timeout:.0f} s: the script never called "
                        f"optimizer.step() (try --step-marker backward, or a larger --timeout)",
                        _tail(log_path) if log else None,
                    )
                raise CaptureError(
                    f"timed out after {opts.timeout:.0f} s at step {steps_seen} of "
                    f"{opts.wait + opts.warmup + opts.active} (raise --timeout, or lower --wait)"
                )
            r, _, _ = select.select([read_fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break  # child closed its end: it exited
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    msg = json.loads(line)
                    ev = msg.get("event")
                    if ev == "phase":
                        steps_seen = max(steps_seen, msg["step"])
                        phase = msg["phase"]
                        if progress:
                            progress(msg["phase"], msg["step"], msg["total"])
                    elif ev == "done":
                        done = msg
                        if progress:
                            progress("post", 0, 0)
                    elif ev == "post":
                        post = msg
                    elif ev == "error":
                        error = msg
                    elif ev == "exited":
                        exited = msg
            elif proc.poll() is not None:
                break
        proc.wait(timeout=max(1.0, opts.timeout - (time.monotonic() - t0)))
    except KeyboardInterrupt:
        # Ctrl-C reaches trainprof alone (the script runs in a session of its own): stop the
        # script, and say whether the run directory is of any use.
        _kill(proc)
        if done is None:
            raise Interrupted(
                f"interrupted {_when(steps_seen, phase, total)}: the script was stopped before its "
                f"trace was written ({run_dir} is incomplete)") from None
        interrupted = True  # the trace is written: keep the run (run.json below), then say so
    except subprocess.TimeoutExpired:
        _kill(proc)
    finally:
        os.close(read_fd)
        # Whatever the script left in its process group goes too: DataLoader workers outlive a
        # child that ended by os._exit (trainprof's own stop, a crash, the user's script) by
        # seconds -- until their watchdog notices -- or for good where they hang.
        _kill_group(proc)
        try:
            os.unlink(cfg_path)  # read at the child's start; not part of the run directory
        except OSError:
            pass
    notes = []
    if error and error.get("kind") == "raised" and done is not None:
        # Raised in the steady-state timing after the trace: the run is complete but for that.
        notes.append(f"{name} raised {error['message']} after the trace was written: "
                     "the steps after the trace were not timed")
        error = None
    if error:
        if error.get("kind") == "profiler":
            if opts.with_stack and not opts.retried:
                # Once more without Python stacks, which the failing code path needs.
                if progress:
                    progress("starting", 0, 0)
                run = capture(script, args, run_dir, replace(opts, with_stack=False, retried=True), progress)
                run.setdefault("notes", []).append(
                    f"torch's profiler failed with Python stacks ({error['message']}): captured without them")
                with open(os.path.join(run_dir, rundir.RUN_JSON), "w") as f:
                    json.dump(run, f, indent=1)
                return run
            raise CaptureError(f"torch's profiler failed: {error['message']} (try --no-stack, or another torch)")
        if error.get("kind") == "raised":
            raise CaptureError(f"{name} raised {error['message']} ({_when(steps_seen, phase, total)}; "
                               "no trace was written)", error.get("traceback"))
        raise CaptureError(error["message"])
    if done is None:
        n = exited["steps"] if exited else steps_seen
        status = exited["status"] if exited else proc.returncode
        if n == 0:
            why = "without a single optimizer step (try --step-marker backward)"
        else:
            why = f"after {max(n - 1, 0)} of the {total} steps trainprof needs (lower --wait/--warmup/--active, or train longer)"
        if status is not None and status < 0:  # ended by a signal: the OOM killer, a crash in native code
            try:
                how = f"was killed by {signal.Signals(-status).name}"
            except ValueError:
                how = f"was killed by signal {-status}"
        else:
            how = f"exited (status {status})"
        raise CaptureError(f"{name} {how} {why}", _tail(log_path) if log else None)
    run = {
        "schema": 1,
        "script": script,
        "script_sha256": sha256(script),
        "argv": list(args),
        "cwd": os.getcwd(),
        "schedule": {"wait": opts.wait, "warmup": opts.warmup, "active": opts.active},
        "capture_s": round(time.monotonic() - t0, 3),
    }
    run.update({k: v for k, v in done.items() if k != "event"})
    run["unprofiled_post_ms"] = post["unprofiled_post_ms"] if post else None
    run["unprofiled_ms"] = rundir.steady_unprofiled(run)
    if notes:
        run["notes"] = notes
    with open(os.path.join(run_dir, rundir.RUN_JSON), "w") as f:
        json.dump(run, f, indent=1)
    if interrupted:
        raise Interrupted(f"interrupted after the trace was written: the script was stopped; the run "
                          f"is saved (`trainprof report {run_dir}` analyzes it)")
    return run


def _when(step: int, phase: str, total: int) -> str:
    """Where the script was, from the child's last progress message."""
    if step == 0:
        return "before its first optimizer step"
    doing = {"wait": "before profiling", "warmup": "while the profiler warmed up",
             "active": "while the profiler recorded", "writing": "while the trace was written"}
    return f"in step {step} of {total}, {doing.get(phase, phase)}"


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    except OSError:
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of the child's process group (its id is the child's pid: the child
    started a session). Called once the child is gone or being stopped; a group with no member
    left answers ESRCH."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # ProcessLookupError: nothing left; PermissionError: not ours
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
