"""Measured trials: run the top findings' fixes instead of trusting their estimates.

For each of the top findings whose fix is a codemod in the analysed script, the patched script
is written beside it under a temporary name (so imports and relative paths resolve alike; the
user's files are never touched, the copies are removed), then timed unprofiled in fresh
processes, in rounds interleaved with the original (so drift of the machine hits all alike), each
searching for steady state as the capture does (verify.py's machinery: steptime.py). Knobs are
set at run time, without a literal in the source: a DataLoader's num_workers swept around the
proposed count (the best kept), TF32 beside bf16, fused optimizers where the codemod cannot reach
the optimizer, and torch.compile on the model for a launch-bound step or an idle GPU (whose
estimates are only upper bounds: the trial measures what the one fix a user can make gains). The best
variant's first losses are compared with the original's, seeded, as `verify` does. A combined
trial runs all the safe fixes together. The results go to RUN_DIR/trials.json, which the analysis
reads: a finding shows its measured speedup next to the estimate, and ranks by it.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field

from ..capture import rundir
from ..errors import TrainprofError
from ..estimate.producer import cores_of
from ..files import write_atomic
from ..finding import TRIAL_SPREAD
from ..readable import ran_this
from ..source.index import read_source
from .apply import FixError, all_codemods, fix_text, resolve
from .verify import VerifyError, losses, step_ms, step_record, timing_env

TOP = 3  # findings tried
SKIP, MIN_STEPS, SETTLE_S = 5, 10, 15.0  # each timed process: steps skipped, at least timed, search budget
# Its windows last about this long (the capture's: 0.2 s): two that agree then hold a second or
# more of steps, so work every few hundred ms (a writer's flushes) is in each, as in a long run.
# Seen on 2 cores: 12 steps of a TensorBoard-logging loop timed a guarded print 0.75x.
WINDOW_S = 1.0
EXTRA_ROUNDS = 2  # rounds beyond `rounds` while some variant's rounds disagree, within the budget
PARITY_STEPS = 10


class TrialError(TrainprofError):
    exit_code = 2


@dataclass
class Variant:
    params: dict
    text: str | None  # the patched script (None: the original, with knobs set at run time)
    change: str  # what the codemod did, or the knobs set
    knobs: dict | None = None  # steptime's TRAINPROF_KNOBS
    optional: bool = False  # may fail to run (torch.compile on an arbitrary model): dropped, not an error
    ms: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)  # steps each process timed (its steady-state search)
    failed: str | None = None  # why an optional variant did not run


@dataclass
class Candidate:
    key: dict  # rule, path, line: the finding it tries
    fix_id: str
    variants: list[Variant]


def _loader_knobs(params: dict, cores: int, as_run: int, cuda: bool = False) -> list[Variant]:
    """A DataLoader's worker count, swept around the proposed one (half, it, twice: at most 4 a
    core), set at run time -- the script's own num_workers need not be a literal; on a GPU run,
    the proposed count with pinned memory too."""
    w = params.get("workers")
    if not isinstance(w, int) or w <= as_run:
        return []
    out = []
    # the proposed count first: the one a trial budget too short for the sweep still times
    for v in sorted({max(as_run + 1, w // 2), w, min(2 * w, 4 * cores)}, key=lambda n: (n != w, n)):
        knobs = {"num_workers": v, "persistent_workers": True}
        out.append(Variant({"num_workers": v}, None, f"num_workers={v}, persistent_workers=True", {"loader": knobs}))
    if cuda:
        knobs = {"num_workers": w, "persistent_workers": True, "pin_memory": True}
        out.append(Variant({"num_workers": w, "pin_memory": True}, None,
                           f"num_workers={w}, persistent_workers=True, pin_memory=True", {"loader": knobs}))
    return out


def _tf32() -> Variant:
    """fp32 matmuls and convolutions on TF32 Tensor Cores: the knob beside bf16 autocast."""
    return Variant({"tf32": True}, None, "torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True",
                   {"tf32": True})


def patch(path: str, text: str, fix_id: str, line: int, params: dict) -> tuple[str, str] | None:
    """(the patched text, what changed) or None where the codemod changes nothing there."""
    try:
        ff = fix_text(path, text, [all_codemods()[fix_id][1]], {fix_id: {line: params}})
    except FixError:
        return None
    if not ff.changed:
        return None
    return ff.after, "; ".join(n.text for _, n in ff.notes if n.applied) or fix_id


def _fused() -> Variant:
    """Fused optimizers (Adam, AdamW, SGD), set at run time: where the optimizer is built
    elsewhere than the script's own literal call."""
    return Variant({"fused": True}, None, "fused=True for Adam/AdamW/SGD (set at run time)", {"fused": True})


def _compile() -> Variant:
    """torch.compile on the model, at run time: what a launch-bound step or an idle GPU's
    upper bound would gain from one fix a user can make."""
    return Variant({"compile": True}, None, "model.compile() (torch.compile, set at run time)", {"compile": True},
                   optional=True)


# run-time knobs for findings whose codemod does not reach the script (or that have none), each tried once
KNOB_FIXES = {"launch-bound": ("compile", _compile), "gpu-idle": ("compile", _compile),
              "unfused-optimizer": ("fused", _fused)}


def candidates(run_dir: str, a: dict, script: str, text: str, cores: int, top: int = TOP,
               cuda: bool = False) -> list[Candidate]:
    """The top findings (by estimated saving) with a codemod that changes the script itself, or
    a knob set at run time (torch.compile for a launch-bound step, once; fused optimizers)."""
    known = all_codemods()
    out: list[Candidate] = []
    ranked = sorted((f for f in a.get("findings") or [] if f.get("saving_ms")), key=lambda f: -f["saving_ms"])
    knobs_tried: set[str] = set()
    for f in ranked:
        fx = f.get("fix") or {}
        variants: list[Variant] = []
        fix_id = fx.get("id")
        if fix_id in known:
            try:
                path, _ = resolve(run_dir, a, f["path"])
            except FixError:
                path = None
            # a fix in another file of the project is not patched (the script would import the original)
            if path is not None and os.path.realpath(path) == os.path.realpath(script):
                if fix_id == "dataloader-config":
                    params = fx.get("params") or {}
                    variants = _loader_knobs(params, cores, int(params.get("was") or 0), cuda)
                else:
                    got = patch(path, text, fix_id, int(f["line"]), fx.get("params") or {})
                    variants = [Variant(fx.get("params") or {}, *got)] if got is not None else []
                    if f["rule"] == "fp32-compute" and cuda:
                        variants.append(_tf32())
        knob = KNOB_FIXES.get(f["rule"])
        if knob and cuda and not variants and knob[0] not in knobs_tried:
            fix_id, variants = knob[0], [knob[1]()]
            knobs_tried.add(knob[0])
        if variants:
            out.append(Candidate({"rule": f["rule"], "path": f["path"], "line": f["line"]}, fix_id, variants))
        if len(out) >= top:
            break
    return out


def together(a: dict, run_dir: str, script: str, text: str, keep) -> tuple[str, str] | None:
    """(the script with the codemods of the analysis's findings that keep(finding, codemod)
    accepts, at their lines in the script, what they are) or None where none changes it."""
    known = all_codemods()
    sites: dict[str, dict[int, dict]] = {}
    for f in a.get("findings") or []:
        fx = f.get("fix") or {}
        if fx.get("id") in known and keep(f, known[fx["id"]][1]):
            try:
                path, _ = resolve(run_dir, a, f["path"])
            except FixError:
                continue
            if os.path.realpath(path) == os.path.realpath(script):
                sites.setdefault(fx["id"], {})[int(f["line"])] = fx.get("params") or {}
    if not sites:
        return None
    ff = fix_text(script, text, [known[i][1] for i in sites], sites)
    return (ff.after, ", ".join(c.id for c in ff.used)) if ff.changed else None


def combined_safe(a: dict, run_dir: str, script: str, text: str) -> Variant | None:
    """All the safe fixes of the analysis at their findings in the script, together."""
    got = together(a, run_dir, script, text, lambda f, c: c.safety == "safe")
    return Variant({}, *got) if got else None


def _every(v: Variant) -> int | None:
    """The period of a throttle (log every N steps), None for other fixes."""
    every = v.params.get("every")
    return every if isinstance(every, int) and every >= 2 else None


def _whole_periods(env: dict, period: int) -> dict:
    """steptime's settings for a throttle and the original it is compared with: a fixed window of
    whole periods after a fixed skip -- the steady-state search would leave the throttle's periodic
    logging out as a spike (the fix's own cost), and the original's writer flushes with it -- as
    long as the search's two windows."""
    return dict(env, TRAINPROF_SETTLE=0, TRAINPROF_STEPS=period, TRAINPROF_MULTIPLE=period,
                TRAINPROF_MIN_S=2 * WINDOW_S, TRAINPROF_SKIP_S=2 * WINDOW_S)


def _original(origs: list[float] | dict, v: Variant) -> list[float]:
    """The original's step times the variant is compared with: timed as the variant was (a
    throttle's: over whole periods, where they were timed)."""
    if isinstance(origs, dict):
        return origs["whole" if _every(v) and origs.get("whole") else "search"]
    return origs


def _speedups(origs: list[float] | dict, v: Variant) -> list[float]:
    """The variant's speedup in each round it ran."""
    return [o / p for o, p in zip(_original(origs, v), v.ms) if p > 0]


def _summary(origs: dict, v: Variant, rounds: int) -> dict:
    sp = _speedups(origs, v)
    orig = _original(origs, v)
    return {"speedup": statistics.median(sp), "low": min(sp), "high": max(sp), "rounds": len(sp),
            "original_ms": statistics.median(orig[:len(sp)]), "patched_ms": statistics.median(v.ms),
            "steps": int(statistics.median(v.steps)) if v.steps else None,
            "params": v.params, "change": v.change, "knobs": v.knobs}


def _fit(runs: list, proc_s: float, originals: int, budget_s: float, rounds: int) -> tuple[list, list]:
    """(the runs that `rounds` rounds time within budget_s, the rest), at proc_s a process (the
    first original's) and `originals` processes of the original a round: each finding's first
    variant (its proposal) in rank order, then all the safe fixes together, then the other
    variants of a sweep; one at least, so a budget shorter than two rounds of one fix still tries
    the top one (`--trial-budget`'s floor)."""
    first = {k for k, x in enumerate(runs) if x[0] is not None and (k == 0 or runs[k - 1][0] is not x[0])}
    order = sorted(range(len(runs)), key=lambda k: (k not in first, runs[k][0] is not None, k))
    n = max(1, int(budget_s / max(proc_s, 1e-3) / max(rounds, 1)) - originals)
    keep = set(order[:n])
    return [x for k, x in enumerate(runs) if k in keep], [x for k, x in enumerate(runs) if k not in keep]


def _disagree(orig_ms: dict, runs) -> bool:
    """Whether a variant's speedups over the rounds so far are further apart than TRIAL_SPREAD."""
    for _, v, _ in runs:
        sp = _speedups(orig_ms, v)
        if not v.failed and len(sp) > 1 and max(sp) > TRIAL_SPREAD * min(sp):
            return True
    return False


def run_trials(run_dir: str, budget_s: float = 180.0, rounds: int = 3, progress=None, timeout: float = 300.0) -> dict:
    """Try the top fixes of run_dir's analysis; write and return trials.json's content."""
    a = rundir.read_analysis(run_dir)
    run = rundir.read_json(os.path.join(run_dir, rundir.RUN_JSON))
    if a is None or run is None:
        raise TrialError(f"{run_dir}: no analysis.json or run.json (run `trainprof analyze` first)")
    sha = a.get("script_sha256")  # trials of another version of the script do not count
    if not any((f.get("fix") or {}).get("id") or KNOB_FIXES.get(f.get("rule")) for f in a.get("findings") or []):
        # nothing to try (the analysis names no file to resolve then)
        return _write(run_dir, {"findings": [], "note": "no finding has a fix to try"}, sha)
    try:
        script, _ = resolve(run_dir, a, os.path.basename(a.get("script") or run.get("script") or ""))
    except FixError as e:
        # findings only in other files of the project name no sha256 for the script: the script
        # where it ran, if it is still the one analysed (it is only read; the copies are beside it)
        script = str(run.get("script") or "")
        if not ran_this(script, sha):
            raise TrialError(f"cannot try fixes: {e}") from None
    text = read_source(script)
    cands = candidates(run_dir, a, script, text, cores_of(run), cuda=bool(run.get("cuda")))
    both = combined_safe(a, run_dir, script, text)
    if not cands and both is None:
        return _write(run_dir, {"findings": [], "note": "no finding has a codemod in the script to try"}, sha)
    say = progress or (lambda s: None)
    folder, stem = os.path.dirname(script), os.path.basename(script)
    tag = uuid.uuid4().hex[:8]
    files: list[str] = []

    def beside(name: str, text: str) -> str:
        p = os.path.join(folder, f"_trainprof_{name}_{tag}_{stem}")
        with open(p, "x", encoding="utf-8") as f:  # never over an existing file
            f.write(text)
        files.append(p)
        return p

    args, env = list(run.get("argv") or []), timing_env(SKIP, MIN_STEPS, SETTLE_S, WINDOW_S)
    t0 = time.monotonic()
    try:
        original = beside("original", text)
        runs = [(c, v, beside(f"trial{k}{j}", v.text) if v.text is not None else original)
                for k, c in enumerate(cands) for j, v in enumerate(c.variants)]
        if both is not None:
            runs.append((None, both, beside("safe", both.text)))
        orig_ms: dict[str, list[float]] = {"search": [], "whole": []}
        periods = [e for _, v, _ in runs if (e := _every(v))]
        whole = _whole_periods(env, math.lcm(*periods)) if periods else None
        done, skipped = 0, []
        for r in range(rounds + EXTRA_ROUNDS):
            spent = time.monotonic() - t0
            if r >= rounds:
                # rounds that disagree (a loaded machine, a bursty step): more, while the budget lasts
                if not _disagree(orig_ms, runs) or spent + spent / r > budget_s:
                    break
            elif r >= 2 and spent > budget_s * r / rounds:
                break  # the budget allows fewer rounds (two at least: a spread)
            label = f"round {r + 1}/{rounds}" if r < rounds else f"round {r + 1} (the rounds disagree)"
            say(f"{label}: original")
            orig_ms["search"].append(step_ms(original, args, env, timeout))
            if whole is not None:
                say(f"{label}: original, whole periods of {whole['TRAINPROF_MULTIPLE']} steps")
                try:
                    orig_ms["whole"].append(step_ms(original, args, whole, timeout))
                except VerifyError:
                    if r:
                        raise
                    whole = None  # a script too short for whole periods: throttles are searched too
            if r == 0:
                n_orig = len(orig_ms["search"]) + len(orig_ms["whole"])
                runs, skipped = _fit(runs, (time.monotonic() - t0) / n_orig, n_orig, budget_s, min(rounds, 2))
                for c, v, _ in skipped:
                    say(f"not tried within the budget: {c.fix_id if c else 'safe fixes'} {v.params or ''}".rstrip())
                if not any(_every(v) for _, v, _ in runs):
                    whole = None  # the throttles were left out: no whole periods of the original either
            for c, v, p in runs:
                if v.failed:
                    continue
                say(f"{label}: {c.fix_id if c else 'safe fixes'} {v.params or ''}".rstrip())
                knobs = {"TRAINPROF_KNOBS": json.dumps(v.knobs)} if v.knobs else {}
                try:
                    rec = step_record(p, args, dict(whole if _every(v) and whole else env, **knobs), timeout)
                except VerifyError as e:
                    if not v.optional:
                        raise
                    v.failed = str(e)[:300]
                    continue
                v.ms.append(rec["step_ms"])
                v.steps.append(int(rec.get("steps") or 0))
            done = r + 1
        out = {"findings": [], "rounds": done, "steps": f"steady state, {SETTLE_S:.0f} s search, after {SKIP} steps"}
        failed = [dict(c.key, fix=c.fix_id, params=v.params, error=v.failed) for c in cands for v in c.variants if v.failed]
        if failed:
            out["failed"] = failed
        if skipped:
            out["skipped"] = [dict(c.key if c else {}, fix=c.fix_id if c else "safe fixes", params=v.params,
                                   why=f"over the trial budget ({budget_s:.0f} s)") for c, v, _ in skipped]
        for c in cands:
            ran = [v for v in c.variants if not v.failed and len(v.ms) == done]
            if not ran:
                continue
            best = max(ran, key=lambda v: statistics.median(_speedups(orig_ms, v)))
            rec = dict(c.key, fix=c.fix_id, trial=_summary(orig_ms, best, done),
                       tried=[{"params": v.params, "ms": statistics.median(v.ms)} for v in ran])
            say(f"loss parity: {c.fix_id}")
            rec["trial"]["parity"] = _parity(original, next(p for _, v, p in runs if v is best), args, timeout,
                                             best.knobs)
            out["findings"].append(rec)
        if both is not None and len(both.ms) == done:
            out["combined"] = _summary(orig_ms, both, done)
        out["seconds"] = round(time.monotonic() - t0, 1)
        return _write(run_dir, out, sha)
    except VerifyError as e:
        raise TrialError(f"a trial failed: {e}") from None
    finally:
        for p in files:
            try:
                os.unlink(p)
            except OSError:
                pass


def _parity(original: str, patched: str, args: list[str], timeout: float, knobs: dict | None = None) -> str:
    try:
        a = losses(original, args, PARITY_STEPS, timeout)
        b = losses(patched, args, PARITY_STEPS, timeout, {"TRAINPROF_KNOBS": json.dumps(knobs)} if knobs else None)
    except VerifyError as e:
        return f"not checked ({e})"
    if a == b:
        return f"losses bit-identical over the first {len(a)} steps"
    if knobs and knobs.get("loader"):
        return ("losses differ from the original's: with another worker count a Dataset that draws random numbers "
                "(augmentation, sampling) draws others, each worker seeded apart; the model's numerics are unchanged")
    return "losses differ from the original's (a fix that changes numerics, or a run that is not reproducible)"


def _write(run_dir: str, out: dict, sha: str | None) -> dict:
    out = dict(out, script_sha256=sha)
    write_atomic(os.path.join(run_dir, rundir.TRIALS_JSON), (json.dumps(out, indent=1) + "\n").encode())
    return out
