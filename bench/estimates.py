"""Predicted vs measured speedups on the example corpus (run on the device machine).

    python bench/estimates.py analyze OUT      # trainprof analyze each slow example -> OUT/runs/NAME/
    python bench/estimates.py time OUT         # unprofiled step time of each example and its fix -> OUT/steptimes.jsonl
    python bench/estimates.py report OUT       # -> bench/ESTIMATES.md (runs anywhere: re-analyzes the runs)

`report` reads OUT/steptimes.jsonl (or a .jsonl path given as OUT) and each example's run from
OUT/runs/NAME, else sample_traces/NAME (where the runs behind bench/ESTIMATES.md are kept, with
bench/results/steptimes-h100.jsonl).

The phases are separate so that each fits one device call; `report` re-reads the
saved runs with the current trainprof, so an estimator change is re-scored
without the GPU. Environment: EXAMPLES (names, comma-separated), ROUNDS (3),
SKIP (40 steps before timing: past the DataLoader prefetch queues), TIMED (30).

What is compared, per example:
- predicted: trainprof's combined estimate over the findings of the rule(s) that
  the `.fixed.py` version applies (`trainprof report RUN --select RULES`), since the
  fixed version applies that fix alone;
- measured: median over interleaved rounds of the unprofiled step time
  (bench/steptime.py) of the original over that of the fixed version;
- error: |log(predicted / measured)|; within 25% means predicted/measured in [0.8, 1.25];
- top finding: where the fix gains (measured >= 1.1x), trainprof's top-ranked finding
  must be that fix's rule; where it gains nothing (< 1.1x), the fix's own estimate
  must say so (< 1.1x) and must not be ranked first.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "examples")

# example -> the rule(s) its .fixed.py version applies
FIXES = {
    "item_sync": ("item-sync",),
    "host_alloc": ("blocking-h2d", "host-alloc"),
    "excessive_logging": ("excessive-logging",),
    "dataloader_stall": ("dataloader-stall",),
    "lstm_item": ("item-sync",),
    "pin_memory_workers": ("blocking-h2d",),
    "small_host_tensors": ("host-alloc",),
    "histogram_logging": ("excessive-logging",),
    "fp32_transformer": ("fp32-compute",),
    "per_sample_loss": ("python-loop",),
    "launch_bound_adam": ("unfused-optimizer",),
    "conv_fp32": ("fp32-compute",),
    "checkpoint_every_step": ("checkpoint-io",),
    "mask_loss": ("mask-index-sync",),
}
STEPS = ["--steps", "200"]
# Fixed versions that throttle (log or save every P steps, as trainprof advises): each timed
# window must span whole periods, so that the periodic log or save is in the time, amortized.
# (P: the longest period there; the others divide it)
PERIOD = {"excessive_logging": 500, "histogram_logging": 500, "checkpoint_every_step": 500}


def _names() -> list[str]:
    want = os.environ.get("EXAMPLES")
    names = want.split(",") if want else list(FIXES)
    return [n for n in names if os.path.isfile(os.path.join(EX, n + ".py"))]


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "trainprof.cli", *args], capture_output=True, text=True, **kw)


def analyze(out: str) -> None:
    for name in _names():
        run = os.path.join(out, "runs", name)
        t = time.monotonic()
        r = _cli("analyze", "--run-dir", run, "-q", os.path.join(EX, name + ".py"), *STEPS, timeout=600)
        print(f"{name}: analyze rc={r.returncode} in {time.monotonic() - t:.0f} s", flush=True)
        if r.returncode:
            print("   ", r.stderr.strip().splitlines()[0] if r.stderr.strip() else "")
        for junk in ("output.log", "report.html"):
            if os.path.exists(os.path.join(run, junk)):
                os.unlink(os.path.join(run, junk))


def _window(v: str) -> tuple[int, int, list[str]]:
    """(skip, timed, script args) for one script: a throttled fixed version is timed
    over whole periods (any P consecutive steps hold exactly one `step % P == 0`)."""
    skip, timed = int(os.environ.get("SKIP", 40)), int(os.environ.get("TIMED", 30))
    period = PERIOD.get(v[:-len(".fixed")]) if v.endswith(".fixed") else None
    if period:
        timed = period * math.ceil(timed / period)
        return skip, timed, ["--steps", str(skip + timed + 10)]
    return skip, timed, STEPS


def steptime(out: str) -> None:
    rounds = int(os.environ.get("ROUNDS", 3))
    with open(os.path.join(out, "steptimes.jsonl"), "a") as log:
        for r in range(rounds):
            t = time.monotonic()
            for name in _names():
                for v in (name, name + ".fixed"):
                    skip, timed, args = _window(v)
                    env = dict(os.environ, STEPTIME_SKIP=str(skip), STEPTIME_STEPS=str(timed))
                    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "steptime.py"),
                                        os.path.join(EX, v + ".py"), *args],
                                       capture_output=True, text=True, env=env, timeout=300)
                    line = (p.stdout.strip().splitlines() or ['{"error": "no output"}'])[-1]
                    rec = json.loads(line) if line.startswith("{") else {"error": line}
                    rec.update(name=v, round=r, skip=skip, timed=timed)
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
            print(f"round {r + 1}/{rounds}: {time.monotonic() - t:.0f} s", flush=True)


def _measured(out: str) -> tuple[dict[str, list[float]], set[str]]:
    """name -> step times (ms); and the throttled fixed versions whose records all timed
    a window that missed the periodic log or save (not comparable with the estimate).
    Only the timing runs (the `run` tag) that timed both an example and its fixed version
    count for either: machines and sessions differ, rounds of one run interleave."""
    recs, missed = [], set()
    with open(out if out.endswith(".jsonl") else os.path.join(out, "steptimes.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if "step_ms" not in rec:
                continue
            name = rec["name"]
            period = PERIOD.get(name[:-len(".fixed")]) if name.endswith(".fixed") else None
            if period and (not rec.get("timed") or rec["timed"] % period):
                missed.add(name)
                continue
            recs.append(rec)
    both: dict[str, set] = {}
    for rec in recs:
        both.setdefault(rec.get("run"), set()).add(rec["name"])
    times: dict[str, list[float]] = {}
    for rec in recs:
        name = rec["name"]
        base = name[:-len(".fixed")] if name.endswith(".fixed") else name
        if {base, base + ".fixed"} <= both[rec.get("run")]:
            times.setdefault(name, []).append(rec["step_ms"])
            if rec.get("device"):  # a timing run on another card than the capture's
                OTHER_CARD.setdefault(base, set()).add(rec["device"].replace("NVIDIA ", ""))
    return times, missed - set(times)


OTHER_CARD: dict[str, set] = {}  # example -> the cards of its timing runs, where not the capture's


def _suggested_period(findings: list, rules: tuple[str, ...]) -> set[int]:
    """The `step % N` periods trainprof's fixes suggest for these rules."""
    import re

    out = set()
    for f in findings:
        m = re.search(r"step % (\d+)", (f.get("fix") or {}).get("summary") or "")
        if f["rule"] in rules and m and f.get("speedup", 1) >= 1.01:
            out.add(int(m.group(1)))
    return out


def _same_card(cross: list, ok: int, n: int) -> str:
    """The score over the rows captured and timed on the same card, where some were not."""
    if not cross:
        return ""
    m, k = n - len(cross), ok - sum(w for _, w in cross)
    return (f" On rows captured and timed on the same card ({', '.join(c for c, _ in cross)} left out): "
            f"{k} of {m} within 25% ({100 * k / max(m, 1):.0f}%).")


def _applied_periods(name: str) -> set[int]:
    """The `step % N` periods the fixed version applies."""
    import re

    with open(os.path.join(EX, name + ".fixed.py")) as f:
        return {int(x) for x in re.findall(r"step % (\d+)", f.read())}


def report_json(run: str, select=None) -> dict:
    """The run's analysis by the trainprof of now, of the selected rules only where given
    (bench/corpus.py uses it too); RuntimeError where `report` fails."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        # a copy: `report RUN_DIR` rewrites the run's analysis.json (sample_traces/ are committed)
        copy = os.path.join(d, os.path.basename(run))
        shutil.copytree(run, copy)
        path = os.path.join(d, "a.json")
        args = ["report", copy, "-q", "--json", path, "--html", os.path.join(d, "r.html")]
        with open(os.path.join(run, "run.json")) as f:  # the script lies in examples/: report reads it when named
            script = json.load(f).get("script")
        if script and os.path.isfile(script):
            args += ["--script", script]
        if select:
            args += ["--select", ",".join(select)]
        r = _cli(*args)
        if r.returncode:
            raise RuntimeError(f"{run}: {r.stderr.strip()}")
        with open(path) as f:
            return json.load(f)


def report(out: str, dest: str) -> None:
    meas, missed = _measured(out)
    rows, ok_err, ok_top, n = [], 0, 0, 0
    cross: list = []  # rows timed on another card than their capture
    device = torch_v = None
    for name in _names():
        run = os.path.join(os.path.dirname(out) if out.endswith(".jsonl") else out, "runs", name)
        if not os.path.isdir(run):
            run = os.path.join(ROOT, "sample_traces", name)
        if name + ".fixed" in missed:
            before = f"{statistics.median(meas[name]):.3g}" if name in meas else "-"
            rows.append(f"| {name} | {', '.join(FIXES[name])} | {before} | "
                        f"(re-measure: the timed window held no `step % {PERIOD[name]}` log or save) | | | | | |")
            continue
        if not os.path.isdir(run) or name not in meas or name + ".fixed" not in meas:
            rows.append(f"| {name} | (not measured) | | | | | | | |")
            continue
        full = report_json(run, None)
        sel = report_json(run, FIXES[name])
        device, torch_v = full.get("device"), full.get("torch")
        before, after = statistics.median(meas[name]), statistics.median(meas[name + ".fixed"])
        rounds = min(len(meas[name]), len(meas[name + ".fixed"]))
        if name in OTHER_CARD:
            rounds = f"{rounds} (timed on {', '.join(sorted(OTHER_CARD[name]))})"
        measured = before / after
        predicted = (sel.get("estimate") or {}).get("combined_speedup") or 1.0
        err = abs(math.log(predicted / measured))
        within = 0.8 <= predicted / measured <= 1.25
        ranked = [f for f in full["findings"]]
        top = ranked[0]["rule"] if ranked else "(none)"
        if measured >= 1.1:
            top_ok = top in FIXES[name]
        else:
            own = [f for f in ranked if f["rule"] in FIXES[name]]
            top_ok = all(f["speedup"] < 1.1 for f in own) and top not in FIXES[name]
        if name in PERIOD and _suggested_period(sel["findings"], FIXES[name]) - _applied_periods(name):
            # trainprof advises another period than the fixed version applies: not the same fix
            rows.append(f"| {name} | {', '.join(FIXES[name])} | {before:.3g} | {after:.3g} | {rounds} | {measured:.3g}x | "
                        f"(trainprof suggests every {sorted(_suggested_period(sel['findings'], FIXES[name]))} steps, "
                        f"the fixed version every {sorted(_applied_periods(name))}) | | |")
            continue
        n += 1
        ok_err += within
        ok_top += top_ok
        if name in OTHER_CARD:
            cross.append((name, within))
        rows.append(f"| {name} | {', '.join(FIXES[name])} | {before:.3g} | {after:.3g} | {rounds} | {measured:.3g}x | "
                    f"{predicted:.3g}x | {err:.2f} {'ok' if within else 'MISS'} | {top} {'ok' if top_ok else 'MISS'} |")
    text = f"""# Estimates vs measurements

Written by `python bench/estimates.py report {os.path.relpath(out, ROOT)}` ({time.strftime('%Y-%m-%d')}), from runs
captured and timed on the device machine: {device}, torch {torch_v}. Step times are unprofiled, in ms per step:
the median over the rounds of `bench/steptime.py` recorded in that file (40 steps skipped, past the DataLoader
prefetch queues, then 20-30 timed; rounds interleave the examples). "predicted" is trainprof's combined estimate for the rule(s)
the fixed version applies (`trainprof report RUN --select RULES`); error is |log(predicted/measured)|, "ok"
within 25%. "top" is trainprof's top-ranked finding: it must be the fix where the fix gains (measured >= 1.1x);
where it does not, the fix's own estimate must say < 1.1x and not be ranked first.

| example | fix | before | after | rounds | measured | predicted | error | top |
|---|---|---|---|---|---|---|---|---|
""" + "\n".join(rows) + f"""

Within 25%: {ok_err} of {n} ({100 * ok_err / max(n, 1):.0f}%). Top finding right: {ok_top} of {n} ({100 * ok_top / max(n, 1):.0f}%).{_same_card(cross, ok_err, n)}
Scored by {platform.python_implementation()} {platform.python_version()} on {platform.node() or 'this machine'}.
"""
    with open(dest, "w") as f:
        f.write(text)
    print(text)


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("analyze", "time", "report"):
        sys.exit(__doc__)
    phase, out = sys.argv[1], sys.argv[2]
    if phase != "report":
        os.makedirs(out, exist_ok=True)
    if phase == "analyze":
        analyze(out)
    elif phase == "time":
        steptime(out)
    else:
        report(out, sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "bench", "ESTIMATES.md"))


if __name__ == "__main__":
    main()
