"""`trainprof verify`: measure a fix instead of trusting the estimate.

Runs the original and the patched script unprofiled for the same steps, in
interleaved rounds (so drift of the machine hits both alike), each in a fresh
process; then runs both seeded for the first steps and compares the losses
passed to backward bit for bit.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from ..capture import reaper
from ..errors import TrainprofError


DISAGREE = 1.25  # rounds whose speedups differ by more than this factor are reported as disagreeing


class VerifyError(TrainprofError):
    exit_code = 2


@dataclass
class Verified:
    original_ms: list[float] = field(default_factory=list)
    patched_ms: list[float] = field(default_factory=list)
    losses: tuple[list[str], list[str]] | None = None
    original_again: list[str] | None = None  # a second seeded run of the original, when they differ

    @property
    def speedups(self) -> list[float]:
        return [a / b for a, b in zip(self.original_ms, self.patched_ms) if b > 0]

    def parity(self) -> tuple[bool, str]:
        """(bit-identical, a line saying so or where they part)."""
        if self.losses is None:
            return False, "loss parity not checked"
        a, b = self.losses
        n = min(len(a), len(b))
        if not n:
            return False, "no losses recorded (no scalar passed to backward)"
        for i in range(n):
            if a[i] != b[i]:
                fa, fb = float(a[i]), float(b[i])
                rel = abs(fa - fb) / max(abs(fa), abs(fb), 1e-30)
                worst = max(abs(float(x) - float(y)) / max(abs(float(x)), abs(float(y)), 1e-30)
                            for x, y in zip(a[:n], b[:n]))
                line = (f"losses differ from step {i + 1} of {n} ({a[i]} vs {b[i]}, relative {rel:.2g}; "
                        f"largest relative difference {worst:.2g})")
                if self.original_again is not None and self.original_again[:n] != a[:n]:
                    line += "; the original differs from itself run to run as well, so this may not be the patch"
                return False, line
        return True, f"losses bit-identical over the first {n} steps"


def _run(script: str, args: list[str], env_extra: dict, timeout: float) -> dict:
    env = dict(os.environ, **{k: str(v) for k, v in env_extra.items()})
    cmd = [sys.executable, "-m", "trainprof.capture.steptime", script, *args]
    reaper.become_subreaper()  # what the script leaves running (a daemon, workers) is ended after it
    keep = reaper.children()
    # Output to files, not pipes: a daemon holding a pipe open would keep its reader waiting forever.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            p = subprocess.run(cmd, stdout=out, stderr=err, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VerifyError(f"{script}: still running after {timeout:.0f} s (raise --timeout?)") from None
        finally:
            reaper.end_escaped(keep)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    out = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode or not out:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise VerifyError(f"{script} failed (exit {p.returncode}): {tail}", detail=p.stderr[-2000:] or None)
    rec = json.loads(out[-1])
    if "error" in rec:
        raise VerifyError(f"{script}: {rec['error']} (fewer steps than asked for: lower --skip/--steps "
                          "or pass the script a larger step count)")
    return rec


def timing_env(skip: int, steps: int, settle: float = 0.0, window_s: float | None = None) -> dict:
    """steptime's settings: skip steps, then time `steps` (settle > 0: search for steady state
    for up to settle seconds, with at least `steps`, in windows of about window_s seconds)."""
    env = {"TRAINPROF_SKIP": max(skip, 1), "TRAINPROF_STEPS": max(steps, 1), "TRAINPROF_SETTLE": max(settle, 0.0)}
    if window_s:
        env["TRAINPROF_WINDOW_S"] = window_s
    return env


def step_ms(script: str, args: list[str], env: dict, timeout: float) -> float:
    """One fresh process of script, unprofiled: its step time (steptime.py)."""
    return step_record(script, args, env, timeout)["step_ms"]


def step_record(script: str, args: list[str], env: dict, timeout: float) -> dict:
    """One fresh process of script, unprofiled: steptime.py's record (step_ms; steps timed)."""
    return _run(script, args, env, timeout)


def losses(script: str, args: list[str], n: int, timeout: float, extra: dict | None = None) -> list[str]:
    """The first n losses of a seeded run: deterministic kernels, and MKL's alignment-
    independent path (without it the same CPU script differs run to run in the last bits,
    seen with torch 2.5.1)."""
    seeded = {"TRAINPROF_LOSSES": n, "TRAINPROF_SEED": 0, "TRAINPROF_DETERMINISTIC": 1,
              "MKL_CBWR": os.environ.get("MKL_CBWR") or "COMPATIBLE",
              "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG") or ":4096:8"}
    return _run(script, args, dict(seeded, **(extra or {})), timeout)["losses"]


def verify(original: str, patched: str, args: list[str], skip: int = 10, steps: int = 20, rounds: int = 3,
           parity_steps: int = 20, timeout: float = 600.0, progress=None, settle: float = 0.0) -> Verified:
    for s in (original, patched):
        if not os.path.isfile(s):
            raise VerifyError(f"script not found: {s}")
    v = Verified()
    timing = timing_env(skip, steps, settle)
    for r in range(rounds):
        for script, into in ((original, v.original_ms), (patched, v.patched_ms)):
            if progress:
                progress(f"round {r + 1}/{rounds}: {os.path.basename(script)}")
            into.append(step_ms(script, args, timing, timeout))
    if parity_steps:
        if progress:
            progress("loss parity")
        a = losses(original, args, parity_steps, timeout)
        b = losses(patched, args, parity_steps, timeout)
        v.losses = (a, b)
        if a != b:  # is the original itself reproducible? then the difference is the patch's
            v.original_again = losses(original, args, parity_steps, timeout)
    return v


def summary(v: Verified, estimate: str | None = None) -> list[str]:
    def spread(xs):
        return f"{statistics.median(xs):.3g} ms per step (min {min(xs):.3g}, max {max(xs):.3g}, {len(xs)} rounds)"

    sp = v.speedups
    lines = []
    if sp:
        lines = [f"original: {spread(v.original_ms)}", f"patched:  {spread(v.patched_ms)}",
                 f"measured speedup: {statistics.median(sp):.3g}x (min {min(sp):.3g}x, max {max(sp):.3g}x)"]
        if len(sp) > 1 and max(sp) > DISAGREE * min(sp):
            lines.append(f"warning: the rounds disagree ({', '.join(f'{x:.3g}x' for x in sp)}): the machine's "
                         "load changed while they ran, or the step is not steady; rerun with more --rounds")
    if estimate:
        lines.append(f"estimated: {estimate}")
    lines.append(v.parity()[1])
    return lines


def period_of(run_dir: str, fix_ids) -> int:
    """The least common multiple of the `every` periods of the applied fixes' findings."""
    import math

    from ..capture import rundir

    a = rundir.read_analysis(run_dir) or {}
    every = [int(f["fix"]["params"]["every"]) for f in a.get("findings") or []
             if (f.get("fix") or {}).get("id") in fix_ids and "every" in ((f.get("fix") or {}).get("params") or {})]
    return math.lcm(*every) if every else 1


def estimate_for(run_dir: str, fix_ids) -> str | None:
    """The combined estimate over the findings whose own fix was written (fix_ids): not over
    every finding of their rules -- a rule with two fixes (a fused optimizer; zero_grad) has
    findings the other fix does not touch."""
    from ..engine import analyze
    from ..estimate.estimates import estimate_all
    from .apply import all_codemods

    from ..capture import rundir
    from .apply import FixError, resolve

    rules = {rid for fid, (rid, _) in all_codemods().items() if fid in fix_ids}
    doc = rundir.read_analysis(run_dir) or {}
    try:  # the script as apply found it (outside RUN_DIR, the analysis would not read it unasked)
        script = resolve(run_dir, doc, os.path.basename(doc["script"]))[0] if doc.get("script") else None
    except FixError:
        script = None
    a = analyze(run_dir, script=script, only=rules)
    mine = [f for f in a.findings if f.fix is not None and f.fix.id in fix_ids and f.saving is not None]
    if not mine:
        return f"none: no measured finding is fixed by {', '.join(sorted(fix_ids))}"
    _, combined = estimate_all(a.run, mine)
    if combined is None:
        return None
    names = sorted({f"{f.rule}:{f.line}" for f in mine})
    return f"{combined.speedup:.3g}x for {', '.join(names)} ({combined.after})"


def verify_written(written, run_dir, args, skip, steps, rounds, parity_steps, timeout, say=print):
    """Time each written file against its original (its backup), as `verify` does: yields
    (path, Verified). The original runs from beside the patched file, so that its imports
    resolve alike."""
    import shutil

    from ..capture import rundir

    if args is None:
        args = (rundir.read_analysis(run_dir) or {}).get("argv") or [] if run_dir else []
    for path, bak in written:
        orig = os.path.join(os.path.dirname(path), f"_trainprof_original_{os.path.basename(path)}")
        shutil.copyfile(bak, orig)
        try:
            say(f"verifying {os.path.relpath(path)} ({rounds} rounds of {steps} steps after {skip})")
            v = verify(orig, path, args, skip, steps, rounds, parity_steps, timeout)
        finally:
            os.unlink(orig)
        yield path, v
