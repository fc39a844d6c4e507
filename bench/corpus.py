"""Estimates and trials against independent measurements, on real scripts (run on the device).

    python bench/corpus.py run OUT [NAME ...]   # each script: analyze --trials, then the ground truth
    python bench/corpus.py report OUT...        # -> the corpus table in bench/ESTIMATES.md (re-reads
                                                #    OUT/runs/NAME, or RUNS=DIR/NAME for a .jsonl, where kept)

Scripts: every `corpus/NAME/run.json` (unmodified third-party scripts, corpus/README.md) and the
examples in EXAMPLES (names of examples/NAME.py; an example's own NAME.fixed.py is timed too, and its
speedup is the truth for the estimate of the rules it applies, as in bench/estimates.py). For each one, in one process tree on one machine:

1. `trainprof analyze --trials --trial-budget TRIAL_BUDGET SCRIPT ARGS`: the estimates, and the
   trials of the top fixes (run by trainprof: patched copies, its steady-state search).
2. The ground truth, measured apart from the trials: each fix the trials ran (its best variant:
   the codemod written by the same function `trainprof apply` uses, or the knobs the trial chose),
   and all the safe fixes together, each timed against the original in fresh processes, unprofiled,
   in ROUNDS interleaved rounds (EXTRA_ROUNDS more while a variant's rounds disagree by over 25%), over a fixed window of steps (SKIP steps and SKIP_S seconds skipped:
   past start-up and the DataLoader's prefetch queue; then TIMED steps and MIN_S seconds, synced at
   both edges; a fixed example that logs every P steps in whole periods) -- not trainprof's search. A round's speedup is original/fixed of that round; the median over rounds is kept.
   An example is timed with its .fixed.py and with trainprof's own codemod of the same rules
   (`apply`'s: the values it chose, e.g. a worker count); the estimate is scored against the latter.

What is scored, per script:
- combined: trainprof's combined estimate vs the measured speedup of all safe fixes together (where
  the script has any; else the top finding's estimate vs its fix);
- dominant named: the fix that measured best (>= 1.1x) is trainprof's first finding; where none
  gains 1.1x, the first finding's estimate must not promise 1.1x either;
- trial: each trial's speedup vs the independent measurement of the same variant (within 10%).

Results append to OUT/corpus.jsonl as they come (a timeout keeps what ran).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from trainprof.fix.apply import FixError  # noqa: E402
from trainprof.fix.trials import combined_safe, patch, together  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from corpus_report import _from_analysis, _ok, _reanalyze, _rounds, report, score, write_report  # noqa: E402, F401
from estimates import FIXES, PERIOD  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", 3))
# rounds added (up to this many) while a variant's per-round speedups lie further apart than 25%:
# two rounds of a noisy host can disagree by 1.7x (bench/ESTIMATES.md), and the median of two is their mean
EXTRA_ROUNDS = int(os.environ.get("EXTRA_ROUNDS", 1))
SKIP, TIMED = int(os.environ.get("SKIP", 40)), int(os.environ.get("TIMED", 40))
# ... and at least these many seconds: 40 steps of a fast fixed variant (1.5 ms) are a 60 ms window
MIN_S, SKIP_S = float(os.environ.get("MIN_S", 2.0)), float(os.environ.get("SKIP_S", 1.0))
TRIAL_BUDGET = os.environ.get("TRIAL_BUDGET", "60")
SETTLE = os.environ.get("SETTLE", "60")  # analyze's --settle
TRIALS = os.environ.get("TRIALS", "1") != "0"  # 0: estimates only (an example's own fix is still timed)
EXAMPLE_ARGS = ["--steps", "100000"]


def scripts(names: list[str]) -> list[dict]:
    out = []
    cdir = os.path.join(ROOT, "corpus")
    for name in sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []:
        spec = os.path.join(cdir, name, "run.json")
        if os.path.isfile(spec):
            s = json.load(open(spec))
            out.append(dict(s, name=name, folder=os.path.join(cdir, name)))
    ex = os.path.join(ROOT, "examples")
    for name in filter(None, os.environ.get("EXAMPLES", "").split(",")):
        s = {"name": name, "script": f"{name}.py", "args": EXAMPLE_ARGS, "folder": ex}
        if os.path.isfile(os.path.join(ex, f"{name}.fixed.py")) and name in FIXES:
            # the example's own fix (bench/estimates.py): its speedup is the truth for the estimate
            # of the rules it applies
            s.update(fixed=f"{name}.fixed.py", select=list(FIXES[name]))
        out.append(s)
    if not names:
        return out
    # in the order asked for (a device call's priorities), unknown names left out
    by = {s["name"]: s for s in out}
    return [by[n] for n in dict.fromkeys(names) if n in by]


def _time(script: str, args: list[str], cwd: str, knobs: dict | None, timeout: float = 300,
          period: int = 1) -> float | None:
    env = dict(os.environ, TRAINPROF_SKIP=str(SKIP), TRAINPROF_STEPS=str(TIMED), TRAINPROF_SETTLE="0",
               TRAINPROF_MIN_S=str(MIN_S), TRAINPROF_SKIP_S=str(SKIP_S), TRAINPROF_MULTIPLE=str(period))
    if knobs:
        env["TRAINPROF_KNOBS"] = json.dumps(knobs)
    try:
        p = subprocess.run([sys.executable, "-m", "trainprof.capture.steptime", script, *args], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    for line in reversed(p.stdout.strip().splitlines()):
        if line.startswith("{"):
            rec = json.loads(line)
            return rec.get("step_ms") or rec.get("ms")
    return None


def _variants(run_dir: str, a: dict, trials: dict, script: str) -> list[dict]:
    """What the trials ran, each as its best variant (the codemod written again by the same
    function, or the knobs recorded), and all safe fixes together."""
    text = open(script, encoding="utf-8").read()
    out = []
    for t in trials.get("findings") or []:
        knobs, body = t["trial"].get("knobs"), None
        if not knobs:
            f = next((f for f in a["findings"] if f["rule"] == t["rule"] and f["line"] == t["line"]), None)
            got = patch(script, text, t["fix"], int(t["line"]), (f["fix"] or {}).get("params") or {}) if f else None
            if got is None:
                continue
            body = got[0]
        out.append({"rule": t["rule"], "line": t["line"], "trial": t["trial"]["speedup"], "knobs": knobs, "text": body})
    both = combined_safe(a, run_dir, script, text)
    if both is not None:
        out.append({"rule": "combined-safe", "line": None, "trial": (trials.get("combined") or {}).get("speedup"),
                    "knobs": None, "text": both.text})
    return out


def _proposed(run_dir: str, a: dict, script: str, select: list[str]) -> str | None:
    """The script with trainprof's own codemods for the findings of the rules `select` names (the
    values it chose on this machine: a worker count), as `apply --fix` writes them; None where
    none applies. An example's .fixed.py is a person's fix of the same kind, with its own values
    (dataloader_stall's: min(8, cores - 1) workers, where trainprof proposed 12 on 16 cores)."""
    text = open(script, encoding="utf-8").read()
    try:
        got = together(a, run_dir, script, text, lambda f, c: f["rule"] in select)
    except FixError:
        return None
    return got[0] if got else None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run_one(s: dict, out: str, rec: dict) -> dict:
    """Fill rec as the script's steps finish (a stopped run keeps what ran: run())."""
    folder, script = s["folder"], os.path.join(s["folder"], s["script"])
    cwd = folder if s.get("cwd", ".") == "." else os.path.join(folder, s["cwd"])
    for cmd in s.get("setup") or []:
        if cmd.startswith("python "):  # this interpreter (the device's is python3 in a venv)
            cmd = f"{sys.executable} {cmd[len('python '):]}"
        subprocess.run(cmd, shell=True, cwd=folder, check=True, timeout=300)
    args = list(s.get("args") or [])
    if s.get("cpu_args") is not None and not _cuda():
        args = list(s["cpu_args"])  # the folder's smaller configuration, for a machine without a GPU
    run = os.path.join(out, "runs", s["name"])
    shutil.rmtree(run, ignore_errors=True)
    t = time.monotonic()
    trial = ["--trials", "--trial-budget", TRIAL_BUDGET] if TRIALS else []
    p = subprocess.run([sys.executable, "-m", "trainprof.cli", "analyze", "--run-dir", run, "-q", "--settle", SETTLE,
                        *trial, script, *args], cwd=cwd, capture_output=True, text=True, timeout=900)
    rec.update(analyze_s=round(time.monotonic() - t, 1), rc=p.returncode)
    if p.returncode:
        lines = p.stderr.strip().splitlines() or [""]
        rec["error"] = next((ln for ln in lines if ln.startswith("trainprof: error")), lines[-1])[:300]
        return rec
    a = json.load(open(os.path.join(run, "analysis.json")))
    trials = json.load(open(os.path.join(run, "trials.json"))) if os.path.exists(os.path.join(run, "trials.json")) else {}
    rec.update(_from_analysis(a), device=a.get("device"), trial_s=trials.get("seconds"), precision=a.get("precision"))
    variants = _variants(run, a, trials, script) if TRIALS or not s.get("fixed") else []
    if s.get("fixed"):
        sel = _reanalyze(run, s["select"])
        rec.update(select=s["select"], fixed_pred=(sel.get("estimate") or {}).get("combined_speedup") if sel else None)
        # a fixed version that throttles (every P steps) is timed over whole periods
        period = PERIOD.get(s["name"])
        variants.append({"rule": "fixed", "line": None, "trial": None, "knobs": None, "text": None,
                         "path": os.path.join(folder, s["fixed"]),
                         "period": period or 1})
        mine = _proposed(run, a, script, s["select"])
        if mine is not None:  # trainprof's own fix of those rules, as `apply` writes it
            variants.append({"rule": "proposed", "line": None, "trial": None, "knobs": None, "text": mine,
                             "period": period or 1})
    files = []
    orig: list = []
    rec["original_ms"], rec["_variants"] = orig, variants
    try:
        for k, v in enumerate(variants):
            if v["text"] is not None:
                v["path"] = os.path.join(folder, f"_bench_fixed{k}_{os.path.basename(script)}")
                with open(v["path"], "w", encoding="utf-8") as f:
                    f.write(v["text"])
                files.append(v["path"])
            else:
                v.setdefault("path", script)
        for r in range(ROUNDS + EXTRA_ROUNDS):
            if r >= ROUNDS and not any(_wide(orig, v["ms"]) for v in variants):
                break
            orig.append(_time(script, args, cwd, None))
            for v in variants:
                v.setdefault("ms", []).append(_time(v["path"], args, cwd, v["knobs"], period=v.get("period", 1)))
    finally:
        for f in files:
            os.unlink(f)
    return rec


def _measured(rec: dict) -> dict:
    """rec with each variant's measured speedup over the rounds timed (all of them, or those a
    stopped run got to)."""
    orig, variants = rec.get("original_ms") or [], rec.pop("_variants", None) or []
    if variants:
        rec["measured"] = []
    for v in variants:
        ms = v.get("ms") or []
        sp = _rounds(orig, ms)
        rec["measured"].append({"rule": v["rule"], "line": v["line"], "trial": v["trial"], "ms": ms,
                                "speedup": statistics.median(sp) if sp else None, "knobs": v["knobs"]})
    return rec


def _wide(orig: list, ms: list) -> bool:
    """The rounds' speedups of a variant lie further apart than the tolerance."""
    sp = _rounds(orig, ms)
    return len(sp) > 1 and not _ok(min(sp), max(sp))


class Stopped(BaseException):
    """SIGTERM (the device call's `timeout`): the script under way is written as far as it got."""


def _stop(signum, frame):
    raise Stopped()


def run(out: str, names: list[str]) -> None:
    os.makedirs(out, exist_ok=True)
    signal.signal(signal.SIGTERM, _stop)
    with open(os.path.join(out, "corpus.jsonl"), "a") as log:
        for s in scripts(names):
            t, rec, stopped = time.monotonic(), {"name": s["name"]}, False
            try:
                run_one(s, out, rec)
            except (subprocess.SubprocessError, OSError, ValueError, KeyError) as e:
                rec["error"] = f"{type(e).__name__}: {e}"[:300]
            except Stopped:
                stopped = True
                rec["stopped"] = "the run was stopped here (its time limit): what ran is kept"
            rec["wall_s"] = round(time.monotonic() - t, 1)
            log.write(json.dumps(_measured(rec)) + "\n")
            log.flush()
            print(f"{s['name']}: {rec.get('error') or ('stopped' if stopped else 'ok')} in {rec['wall_s']} s", flush=True)
            if stopped:
                break



if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("run", "report"):
        sys.exit(__doc__)
    if sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3:])
    else:
        write_report(sys.argv[2:])
