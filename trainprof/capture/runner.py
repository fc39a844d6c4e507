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

from ..errors import CaptureError
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
    steps_seen = 0
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
        _kill(proc)
        raise CaptureError("interrupted: the script was stopped; no trace was written") from None
    except subprocess.TimeoutExpired:
        _kill(proc)
    finally:
        os.close(read_fd)
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
            raise CaptureError(f"{os.path.basename(script)} raised {error['message']}", error.get("traceback"))
        raise CaptureError(error["message"])
    if done is None:
        total = opts.wait + opts.warmup + opts.active
        n = exited["steps"] if exited else steps_seen
        status = exited["status"] if exited else proc.returncode
        if n == 0:
            why = "without a single optimizer step (try --step-marker backward)"
        else:
            why = f"after {max(n - 1, 0)} of the {total} steps trainprof needs (lower --wait/--warmup/--active, or train longer)"
        raise CaptureError(
            f"{os.path.basename(script)} exited (status {status}) {why}",
            _tail(log_path) if log else None,
        )
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
    with open(os.path.join(run_dir, rundir.RUN_JSON), "w") as f:
        json.dump(run, f, indent=1)
    os.unlink(cfg_path)
    return run


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
