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
from ..files import open_regular, write_atomic
from . import cores, reaper, rundir
from .channel import Ranks, close_channel, open_channel, received
from .roots import default_roots


@dataclass
class CaptureOptions:
    wait: int = 5  # unprofiled steps timed at least (steady state may take more)
    warmup: int = 2
    active: int = 3
    settle: float = 60.0  # seconds the search for steady state may take; 0: time `wait` steps
    timeout: float = 300.0
    step_marker: str = "optimizer"
    with_stack: bool = True
    record_shapes: bool = True
    full_run: bool = False
    show_output: bool = False
    python: str = sys.executable
    # torchrun's options for a distributed run (capture/launch.py); None: one process
    launcher: list[str] | None = None
    # folders whose code is the user's (roots.py); None: the script's, and any code not installed
    source_roots: list[str] | None = None
    retried: bool = False  # internal: this is the retry without stacks after a profiler failure


def _tail(path: str, n: int = 12) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def sha256(path: str) -> str:
    """Of a regular file (a FIFO is refused, not waited on), read in chunks."""
    h = hashlib.sha256()
    with open_regular(path) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def capture(script: str, args: list[str], run_dir: str, opts: CaptureOptions, progress=None) -> dict:
    """Run `script args` under the profiler into run_dir; return run.json's content."""
    if not os.path.isfile(script):
        raise CaptureError(f"script not found: {script}")
    if min(opts.wait, opts.active) < 1 or opts.warmup < 0 or opts.settle < 0:
        raise CaptureError("--wait and --active must be at least 1, --warmup and --settle at least 0")
    script = os.path.abspath(script)
    sock, sock_path = open_channel()
    cfg = {
        "script": script,
        "args": list(args),
        "run_dir": os.path.abspath(run_dir),
        "wait": opts.wait,
        "warmup": opts.warmup,
        "active": opts.active,
        "settle_s": opts.settle,
        "step_marker": opts.step_marker,
        "with_stack": opts.with_stack,
        "record_shapes": opts.record_shapes,
        "full_run": opts.full_run,
        # the script first (file 0 of the line log); the rest of the project's code as it runs (roots.py)
        "user_files": [script],
        "source_roots": default_roots(script, opts.source_roots),
        "watch_s": _watch_s(script, opts),
        "msg_path": sock_path,
        "distributed": opts.launcher is not None,
    }
    cfg_path = os.path.join(run_dir, "capture-config.json")
    write_atomic(cfg_path, json.dumps(cfg).encode())
    log_path = os.path.join(run_dir, rundir.OUTPUT_LOG)
    # never through a link planted in a --run-dir given
    log = None if opts.show_output else os.fdopen(
        os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666), "wb")
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The child imports trainprof from wherever this process did, then takes that
    # directory off sys.path again: in a source checkout it would put the repo's
    # own folders (tests/, examples/) on the user's import path.
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    boot = (f"import sys; sys.path.insert(0, {pkg_root!r}); "
            "from trainprof.capture.child import main; del sys.path[0]; main()")
    child = [opts.python, "-c", boot, cfg_path]
    if opts.launcher is not None:  # every rank runs the child; torchrun runs the ranks
        child = [opts.python, "-m", "torch.distributed.run", *opts.launcher, "--no-python", *child]
    t0 = time.monotonic()
    reaper.become_subreaper()  # a daemon the script starts (double fork, setsid) is adopted here...
    keep = reaper.children()
    try:
        proc = subprocess.Popen(
            child,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
            env=env,
            start_new_session=True,  # so a timeout can end the script and its workers together
        )
    except OSError as e:
        close_channel(sock, sock_path)
        raise CaptureError(f"cannot start {opts.python}: {e.strerror}") from None
    finally:
        if log:
            log.close()
    ranks = Ranks()
    traced_at = None
    name = os.path.basename(script)
    interrupted = False
    restore = _stop_signals_interrupt()
    try:
        while True:
            left = opts.timeout - (time.monotonic() - t0)
            if ranks.traced and traced_at is None:
                traced_at = time.monotonic()
            if traced_at is not None and time.monotonic() - traced_at > _post_limit(ranks, opts):
                left = 0  # the steps after the trace are timed only; past that, stop waiting for them
            if left <= 0:
                _kill(proc)
                if ranks.traced:
                    break  # the trace is written; only the steady-state timing was cut short
                if ranks.steps == 0:
                    raise CaptureError(
                        f"no training step seen in {opts.timeout:.0f} s: the script never called "
                        f"optimizer.step() (try --step-marker backward, or a larger --timeout)",
                        _tail(log_path) if log else None,
                    )
                raise CaptureError(
                    f"timed out after {opts.timeout:.0f} s at step {ranks.steps}, "
                    f"{_doing(ranks.phase)} (raise --timeout"
                    + (", or lower --settle)" if ranks.phase == "wait" and opts.settle else ", or lower --wait)")
                )
            r, _, _ = select.select([sock], [], [], min(left, 0.2))
            if r:
                for msg in received(sock):
                    ranks.take(msg, progress)
            elif proc.poll() is not None:
                for msg in received(sock):  # sent just before it exited
                    ranks.take(msg, progress)
                break
        proc.wait(timeout=max(1.0, opts.timeout - (time.monotonic() - t0)))
    except KeyboardInterrupt:
        # Ctrl-C reaches trainprof alone (the script runs in a session of its own): stop the
        # script, and say whether the run directory is of any use.
        _kill(proc)
        if not ranks.traced:
            raise Interrupted(
                f"interrupted {_when(ranks.steps, ranks.phase, ranks.total)}: the script was stopped before its "
                f"trace was written ({run_dir} is incomplete)") from None
        interrupted = True  # the trace is written: keep the run (run.json below), then say so
    except subprocess.TimeoutExpired:
        _kill(proc)
    finally:
        restore()
        close_channel(sock, sock_path)
        # Whatever the script left in its process group goes too: DataLoader workers outlive a
        # child that ended by os._exit (trainprof's own stop, a crash, the user's script) by
        # seconds -- until their watchdog notices -- or for good where they hang.
        _kill_group(proc, ranks.pids)
        reaper.end_escaped(keep)  # ...and ended with the rest
        try:
            os.unlink(cfg_path)  # read at the child's start; not part of the run directory
        except OSError:
            pass
    done, post = ranks.done.get(0), ranks.post.get(0)
    error = ranks.errors[0] if ranks.errors else None
    exited = ranks.exited.get(0)
    on_rank = f" on rank {error.get('rank', 0)}" if error and opts.launcher is not None else ""
    steps_seen, phase = ranks.steps, ranks.phase
    notes = []
    if error and error.get("kind") == "raised" and ranks.traced:
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
                write_atomic(os.path.join(run_dir, rundir.RUN_JSON), json.dumps(run, indent=1).encode())
                return run
            raise CaptureError(f"torch's profiler failed: {error['message']} (try --no-stack, or another torch)")
        if error.get("kind") == "raised":
            raise CaptureError(f"{name} raised {error['message']}{on_rank} ({_when(steps_seen, phase, ranks.total)}; "
                               "no trace was written)", error.get("traceback"))
        raise CaptureError(error["message"] + on_rank)
    if done is None:
        n = exited["steps"] if exited else steps_seen
        status = exited["status"] if exited else proc.returncode
        if n == 0:
            why = "without a single optimizer step (try --step-marker backward)"
        elif ranks.total:  # the profiler's schedule was set: the steps it needs are known
            why = f"after {n - 1} of the {ranks.total} steps trainprof needs (lower --warmup/--active, or train longer)"
        else:
            why = (f"after {n - 1} steps, before reaching steady state: trainprof needs {_needed(opts)} or more "
                   "(lower --settle or --wait, or train longer)")
        if status is not None and status < 0:  # ended by a signal: the OOM killer, a crash in native code
            try:
                how = f"was killed by {signal.Signals(-status).name}"
            except ValueError:
                how = f"was killed by signal {-status}"
        else:
            how = f"exited (status {status})"
        raise CaptureError(f"{name} {how} {why}", _tail(log_path) if log else None)
    missing = [r for r in range(ranks.world) if r not in ranks.done]
    if missing:
        raise CaptureError(f"rank{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {ranks.world} "
                           f"wrote no trace (torchrun exited with status {proc.returncode})",
                           _tail(log_path) if log else None)
    run = {
        "schema": 1,
        "script": script,
        "script_sha256": sha256(script),
        "argv": list(args),
        "cwd": os.getcwd(),
        "schedule": {"wait": opts.wait, "warmup": opts.warmup, "active": opts.active, "settle_s": opts.settle},
        "capture_s": round(time.monotonic() - t0, 3),
    }
    run.update({k: v for k, v in done.items() if k != "event"})
    run["fetches"] = ranks.fetch_totals(0)
    if cores.worth_probing(run):
        # what workers would get done side by side on these cores, the script stopped (the loader's estimate)
        run["parallel"] = cores.parallel(int(run["cores"]) - 1)
    run["unprofiled_post_ms"] = post["unprofiled_post_ms"] if post else None
    _with_watch(run, ranks.periodic.get(0))
    if opts.launcher is not None:
        run["launcher"] = list(opts.launcher)
        run["world_size"] = ranks.world
        run["ranks"] = [_rank_record(r, ranks) for r in sorted(ranks.done)]
    run["unprofiled_ms"] = rundir.steady_unprofiled(run)
    if notes:
        run["notes"] = notes
    write_atomic(os.path.join(run_dir, rundir.RUN_JSON), json.dumps(run, indent=1).encode())
    if interrupted:
        raise Interrupted(f"interrupted after the trace was written: the script was stopped; the run "
                          f"is saved (`trainprof report {run_dir}` analyzes it)")
    return run


def _post_limit(ranks: Ranks, opts: CaptureOptions) -> float:
    """How long the steady-state timing after the trace may take: ample for its steps at the
    profiled length, the watch for periodic spikes, and a minute more."""
    d = ranks.done.get(0, {})
    step_s = max(d.get("profiled_step_ms") or [0.0]) / 1000
    watch = 2 * WATCH_S if opts.settle else 0.0
    return 60.0 + watch + 10 * (d.get("post_steps") or opts.wait) * step_s if not opts.full_run else float("inf")


WATCH_S = 20.0  # at most this long watching for periodic spikes after the trace


def _watch_s(script: str, opts: CaptureOptions) -> float:
    """Seconds to watch the steps after the trace for periodic spikes: where the script's
    training loop has a block that runs every N steps (`if step % N == 0:`), up to WATCH_S, within
    --settle; else none (a run with nothing periodic ends as soon as it is timed)."""
    if not opts.settle or opts.launcher is not None:
        return 0.0
    from ..source import index_source
    from ..source.patterns import periodic_blocks

    try:
        return min(WATCH_S, opts.settle) if periodic_blocks(index_source(script)) else 0.0
    except Exception:  # noqa: BLE001 -- a script the parser cannot read still runs; nothing is watched
        return 0.0


def _with_watch(run: dict, seen: dict | None) -> None:
    """The watch's period into run.json's steady, where the search saw none."""
    st = run.get("steady")
    if not seen or not isinstance(st, dict):
        return
    st["watched_s"], st["watched_steps"] = seen.get("watched_s"), seen.get("watched_steps")
    if seen.get("period") and not st.get("period"):
        st.update(period=seen["period"], spike_ms=seen.get("spike_ms"), spike_steps=[], spike_source="watch")


def _needed(opts: CaptureOptions) -> int:
    """The fewest steps a capture takes: the unprofiled ones (two windows of a search for
    steady state, or --wait), the line recorder's three, the profiler's, and the first."""
    from .steady import MIN_WINDOW

    settle = max(opts.wait, 2 * MIN_WINDOW) if opts.settle else opts.wait
    return 1 + settle + 3 + opts.warmup + opts.active


def _rank_record(rank: int, ranks: Ranks) -> dict:
    """One rank's files and timing, for run.json's "ranks"."""
    d, post = ranks.done[rank], ranks.post.get(rank)
    rec = {"rank": rank, "trace": d["trace"], "lines": d.get("lines"), "host": d.get("host"),
           "device": d.get("device"), "unprofiled_pre_ms": d.get("unprofiled_pre_ms"),
           "unprofiled_post_ms": post["unprofiled_post_ms"] if post else None,
           "profiled_step_ms": d.get("profiled_step_ms")}
    rec["unprofiled_ms"] = rundir.steady_unprofiled(rec)
    return rec


def _doing(phase: str) -> str:
    return {"wait": "before profiling", "warmup": "while the profiler warmed up", "starting": "before its first step",
            "active": "while the profiler recorded", "writing": "while the trace was written"}.get(phase, phase)


def _when(step: int, phase: str, total: int) -> str:
    """Where the script was, from the child's last progress message (total: the steps the
    capture takes, once known)."""
    if step == 0:
        return "before its first optimizer step"
    return f"in step {step}{f' of {total}' if total else ''}, {_doing(phase)}"


def _stop_signals_interrupt():
    """SIGTERM and SIGHUP (a `timeout`, a closed terminal, a job scheduler) stop trainprof as
    Ctrl-C does, so that the script -- and under torchrun every rank, each in a session of its
    own -- is stopped with it instead of left running. Returns what puts the handlers back."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    return lambda: [signal.signal(sig, h) for sig, h in old.items()]


def _kill(proc: subprocess.Popen) -> None:
    """End the child: SIGTERM first (torchrun passes it on to its ranks), SIGKILL after 5 s.
    What is left of it and of the ranks, capture()'s `finally` kills (_kill_group)."""
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


def _kill_group(proc: subprocess.Popen, ranks: dict | None = None) -> None:
    """SIGKILL what is left of the child's process group (its id is the child's pid: the child
    started a session), and of each rank's (torchrun starts every rank in a session of its own).
    Called once the child is gone or being stopped; a group with no member left answers ESRCH."""
    for pgid in [proc.pid, *(ranks or {}).values()]:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:  # ProcessLookupError: nothing left; PermissionError: not ours
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
