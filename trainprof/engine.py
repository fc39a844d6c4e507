"""Load -> Run -> rules -> estimate: one analysis of one run, no output.

build_run() reads a trace (and its run directory) into the frozen Run record, computing
once what the rules share; analyze() runs every rule over it, then the estimate stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import numpy as np

from .capture import rundir
from .checked import cheap as cheap_lines
from .checked import noqa, not_run_split
from .errors import TraceError, TrainprofError
from .estimate.calibration import OP_US, calibration, make_warp
from .estimate.estimates import Combined, combined_trial, estimate_all, untried, with_trials
from .estimate.producer import producer
from .estimate.replay import replay
from .estimate.timeline import build_timeline
from .finding import Finding
from .readable import ran_this, source_roots, why_not_read
from .rule import Rule, all_rules
from .run import Run
from .source import index_source
from .source import patterns as P
from .trace import load_trace
from .trace import measures as M
from .trace.comm import cross_rank, rank_comm
from .trace.launches import launches as launch_join
from .trace.line_times import LineTimes, covered, line_times, loop_file
from .trace.lines import build_line_map, line_costs, unprofiled_line_costs
from .trace.model import Trace
from .trace.syncs import sync_waits


@dataclass(frozen=True, eq=False)
class Analysis:
    """One analysis: the Run and what the rules found in it, estimated. No output yet
    (report/prepare.py computes what the outputs show)."""

    run: Run
    run_dir: str | None
    trace_path: str
    findings: list[Finding]  # ranked: estimated savings first, then bounds, then ~0, then static
    skipped: list[tuple[str, str]]  # (rule id, why it could not run here)
    combined: Combined | None
    checked: list[str]  # rules that ran (found something or not)
    notes: list[str] = field(default_factory=list)
    not_run: list[Finding] = field(default_factory=list)  # static findings on loop lines that did not run
    # what a rule's lint suspects, measured and found cheap here: (rule, path, line, the line's unprofiled ms
    # per step where it is a line of the step, else None)
    cheap: list[tuple[str, str, int, float | None]] = field(default_factory=list)
    trial: dict | None = None  # all the safe fixes together, run and measured (trials.json), where they were
    # The folders whose .py files the outputs may read (hash, excerpt, preview): the run's own and
    # --script's. A run directory is passed around: the paths it names are not read outside them.
    source_roots: tuple[str, ...] = ()

    def may_read(self, path: str) -> bool:
        return why_not_read(path, self.source_roots) is None

    @property
    def info(self) -> dict:
        """run.json as read (with the steady unprofiled step)."""
        return self.run.info

    @property
    def script(self) -> str | None:
        """The script that ran (the rules may read the training loop's file: run.script)."""
        return self.run.entry or self.run.script

    @property
    def device(self) -> str:
        tr = self.run.trace
        return self.info.get("device") or tr.device_name or ("cuda" if tr.has_cuda else "cpu")

    @property
    def n_steps(self) -> int:
        return self.run.n_steps

    @property
    def profiled_ms(self) -> float:
        return self.run.step_us / 1000

    @property
    def unprofiled_ms(self) -> float | None:
        return self.info.get("unprofiled_ms")

    @property
    def source(self) -> str | None:
        """The script's text as indexed (for excerpts in reports)."""
        return self.run.index.text if self.run.index is not None else None








def _skip_reason(rule: Rule, run: Run) -> str | None:
    if "cuda" in rule.needs and not run.trace.has_cuda:
        return "no CUDA activity in this run"
    if "source" in rule.needs and run.index is None:
        return "no script to read (pass --script)"
    if "memory" in rule.needs and not run.info.get("memory"):
        return "no GPU memory record in run.json (a run captured before trainprof recorded one)"
    if "ranks" in rule.needs and not run.ranks:
        return "not a distributed run (one trace)"
    if "lines" in rule.needs and run.lines is None:
        return "no line attribution (a bare trace has no line recorder log)"
    return None


def _rank(f, combined) -> tuple:
    """Measured or estimated savings first, largest first (a trial's measure over the estimate);
    then upper bounds; then fixes that gain ~0 here."""
    base = combined.base_ms if combined else 0.0
    if f.trial is not None and base:
        saved = base * (1 - 1 / f.trial.counted) if f.trial.counted > 0 else 0.0
        return (0 if saved >= 0.01 * base else 2, -saved, f.path, f.line)
    if f.estimate is None:
        tier = 3
    elif f.estimate.bound:
        tier = 1
    else:
        tier = 0 if base and f.saving_ms >= 0.01 * base else 2
    return (tier, -f.saving_ms, f.path, f.line)


def _steady_notes(run: dict) -> list[str]:
    """What the run says of its steady state: not reached within the search's budget; or, where
    no search was made, a DataLoader whose queue may still have held batches made while the
    run started (workers x prefetch_factor of them), hiding a loader that cannot keep up."""
    st = run.get("steady") or {}
    if st.get("searched") and st.get("reached") is False:
        windows = ", ".join(f"{v:.3g}" for v in (st.get("windows_ms") or [])[-4:])
        return [f"no steady state within {st.get('seconds', 0):.0f} s ({st.get('steps')} steps; the last windows "
                f"ran {windows} ms a step): the step time and the estimates rest on a run still changing "
                "(raise --settle)"]
    if st.get("searched"):
        return []
    out = []
    if run.get("profiled_from") is not None:
        last = run["profiled_from"] + len(run.get("active_steps") or [0]) + 1
    else:  # before the search for steady state: ProfilerStep numbers counted every step
        last = max(run.get("active_steps") or [0]) + 1 + (run.get("schedule") or {}).get("wait", 0)
    for ld in run.get("loaders") or []:
        w, p = ld.get("num_workers") or 0, ld.get("prefetch_factor") or 2
        if w and last - (ld.get("first_step") or 0) <= w * p:
            out.append(f"the DataLoader queues up to {w * p} batches ({w} workers x prefetch_factor {p}) and the "
                       f"timed steps ended by about step {last}: loader waits may be understated; "
                       "re-run with --settle (searching for steady state)")
    return out


def _line_times(trace: Trace, st: M.Steps, run_dir: str | None, lines_name: str | None, run: dict,
                script: str | None, notes: list[str]) -> LineTimes | None:
    """The line recorder's log aligned with this trace (None: no log, or none that aligns)."""
    if not (run_dir and lines_name):
        return None
    try:
        doc = rundir.read_lines(run_dir, lines_name)
    except TraceError as e:  # the trace still stands: analyze it without line attribution
        notes.append(f"{lines_name} is damaged, so no line attribution: {e.message}")
        return None
    if not doc:
        return None
    # Paths in the log are where the run happened; map them to where they are now.
    if script and run.get("script"):
        doc["files"] = [os.path.abspath(script) if f == run["script"] or os.path.basename(f) == os.path.basename(run["script"])
                        else f for f in doc["files"]]
    starts = {int(n): float(s) for n, s in zip(st.num, st.start)}
    ends = {int(n): float(e) for n, e in zip(st.num, st.end)}
    anchors = trace.ts[trace.name_mask(lambda n: n == M.ANCHOR)]
    op = M.on_thread(trace, st) & trace.cat_mask(M.CPU_OP)
    lm = build_line_map(doc, starts, ends, anchors.tolist(), ops=(trace.ts[op], trace.end[op]))
    if lm is None:
        return None
    clean = run.get("unprofiled_ms")
    return line_times(lm, trace, st, unprofiled_line_costs(doc, clean * 1000.0 if clean else None), covered(doc))


def _focus(lt: LineTimes | None, script: str | None, index, notes: list[str], roots: tuple[str, ...]):
    """(the file the rules read, its index): the training loop's file where the line log shows
    the loop running in another file of the project than the script (`fit()` in a package
    beside it), and it may be read (why_not_read); else the script."""
    focus = loop_file(lt) if lt is not None and script else None
    if not focus or os.path.abspath(focus) == script or not os.path.isfile(focus):
        return script, index
    why = why_not_read(focus, roots)
    if why:
        notes.append(f"the training loop runs in {focus}, which was not read ({why}): findings point at the script")
        return script, index
    try:
        idx = index_source(focus)
    except TrainprofError as e:
        notes.append(f"the training loop runs in {focus}, which cannot be read ({e.message}): findings point "
                     "at the script")
        return script, index
    notes.append(f"the training loop runs in {os.path.relpath(focus, os.path.dirname(script))}: findings point "
                 "at its lines there")
    return os.path.abspath(focus), idx


def _loader_lines(run_dir: str, notes: list[str]) -> dict | None:
    """loader_lines.json: (path, line) -> µs per batch (None: none sampled, or a damaged file)."""
    try:
        doc = rundir.read_json(os.path.join(run_dir, rundir.LOADER_LINES_JSON))
        if not doc:
            return None
        files, part = doc["files"], doc["batches"]
        return {k: v for k, v in line_costs(part, [str(f) for f in files]).items() if v > 0}
    except (TraceError, KeyError, TypeError, ValueError, IndexError) as e:
        notes.append(f"{rundir.LOADER_LINES_JSON} is damaged, so the loader's lines are not shown ({e})")
        return None


def _script_of(run_dir: str | None, info: dict, notes: list[str]) -> str | None:
    """The script a run ran: a copy carried in the run directory (sample_traces/: it reads the
    same wherever the run is), else where it was run."""
    ran = info.get("script")
    if not ran:
        return None
    beside = os.path.join(run_dir, os.path.basename(ran)) if run_dir else None
    if beside and os.path.isfile(beside) and beside.endswith(".py"):
        return beside
    if os.path.isfile(ran):
        return ran
    notes.append("the script is not where it was run: source lines are shown without code")
    return None


def build_run(trace_path: str, run_dir: str | None, run: dict, script: str | None, index, lines_name: str | None,
              notes: list[str], progress=None, roots: tuple[str, ...] = ()) -> Run:
    """One rank's Run: its trace, steps, line times, syncs, launches, timeline and calibration,
    each computed once, in this order, before any rule. roots: the folders whose sources may be
    read (a loop's file outside them is not)."""
    trace = load_trace(trace_path, progress)
    st = M.steps(trace, run.get("active_steps"))
    if len(st) == 0:
        raise TraceError(f"{trace_path}: no ProfilerStep#N spans: not a trace of training steps")
    script = os.path.abspath(script) if script else None
    lt = _line_times(trace, st, run_dir, lines_name, run, script, notes)
    entry = script
    script, index = _focus(lt, script, index, notes, roots)
    lo, hi = st.window
    main = M.on_thread(trace, st) & M.in_window(trace, lo, hi)
    lk = launch_join(trace, st)
    tl = build_timeline(trace, st, lk)
    step_us = replay(tl).step_us if trace.has_cuda else float(np.mean(st.dur))
    gpu_busy_us = M.gpu_busy(trace, lo, hi) / max(len(st), 1)
    unprofiled_us = run["unprofiled_ms"] * 1000.0 if run.get("unprofiled_ms") else None
    issue = rundir.issue_ms(run) if trace.has_cuda else None
    issue_us = 1000.0 * issue if issue else None
    warp = None
    # Per-line profiler correction, where the step is CPU-bound and the unprofiled steps' line
    # log exists (a GPU-bound line's time is mostly waiting: not corrected so).
    if lt is not None and lt.unprofiled and not (trace.has_cuda and gpu_busy_us * len(st) > 0.5 * (hi - lo)):
        n = max(len(st), 1)

        def own(key, p):
            return max(p - OP_US["cuda"] * sum(tl.recorded_weight(a, b) for a, b in lt.by_line.get(key, ())) / n, 0.0)

        # Waits beyond a line's own work, on a GPU run only: there a line's ops issue work and its
        # logged time can hold a full launch queue or the GIL; on the CPU an op's time is its
        # compute, which the loader's workers contend with whatever a fix removes.
        warp = make_warp(lo, hi, lt.by_line, lt.per_step, lt.unprofiled, own if trace.has_cuda else None)

    def line_of(i: int) -> int | None:
        return lt.frame_in(i, script) if lt is not None and script is not None else None

    spans = M.dataloader_spans(trace, st)
    loader = _loader_lines(run_dir, notes) if run_dir and lines_name == rundir.LINES_JSON else None
    precision, why = rundir.read_precision(run_dir) if run_dir and trace.has_cuda else (None, None)
    if why:
        notes.append(why)
    return Run(precision=precision, trace=trace, steps=st, info=run, script=script, entry=entry, index=index, lines=lt,
               launches=lk, producer=producer(run, len(spans) / len(st) if len(spans) else 1.0), loader_lines=loader,
               root=os.path.dirname(entry or os.path.abspath(trace_path)),
               syncs=sync_waits(trace, st, line_of), timeline=tl,
               calibration=calibration(tl, unprofiled_us, trace.has_cuda, warp, issue_us), main=main, step_us=step_us,
               unprofiled_us=unprofiled_us, gpu_busy_us=gpu_busy_us,
               loader_call=P.loader_call(index) if index is not None else None,
               logging_lines=frozenset(P.logging_lines(index)) if index is not None else frozenset())


def _with_ranks(run0: Run, run_dir: str, info: dict, script, index, notes: list[str], roots: tuple[str, ...]) -> Run:
    """A distributed run: rank 0's Run with every rank's (in rank order) and who waited for whom."""
    recs = sorted(info.get("ranks") or [], key=lambda r: r["rank"])
    if len(recs) < 2:
        return run0
    comm0 = rank_comm(run0.trace, run0.steps)
    out = []
    for rec in recs:
        if rec["rank"] == 0:
            out.append(replace(run0, comm=comm0))
            continue
        path = os.path.join(run_dir, os.path.basename(rec["trace"]))
        if not os.path.isfile(path):
            notes.append(f"rank {rec['rank']}'s trace {rec['trace']} is missing: the cross-rank findings are not made")
            return run0
        own = dict(info, unprofiled_ms=rec.get("unprofiled_ms") or info.get("unprofiled_ms"))
        r = build_run(path, run_dir, own, script, index, rec.get("lines"), [], roots=roots)
        out.append(replace(r, comm=rank_comm(r.trace, r.steps)))
    return replace(run0, comm=comm0, ranks=tuple(out), cross_rank=cross_rank([r.comm for r in out]))


def analyze(target: str, script: str | None = None, only: set[str] | None = None, progress=None) -> Analysis:
    """Load -> Run -> rules -> estimate. progress(phase, done, total), if given, hears how
    loading and the rules go."""
    run_dir, trace_path = rundir.resolve(target)
    info = (rundir.read_run(run_dir) if run_dir else None) or {}
    notes = list(info.get("notes") or [])  # from the capture (e.g. a retry without stacks)
    info = dict(info, unprofiled_ms=rundir.steady_unprofiled(info)) if info else info
    roots = source_roots(run_dir or os.path.dirname(os.path.abspath(trace_path)), script)  # a bare trace: its folder
    given, script = script, script or _script_of(run_dir, info, notes)
    # run.json names the script: its path serves the line attribution, but it is read only
    # where it may be (a run directory is passed around, and run.json is its word) -- or where
    # it is the very file the run ran, its sha256 as run.json recorded it (whoever made the run
    # had its content): then as if given with --script (`trainprof report RUN` from anywhere)
    why = why_not_read(script, roots) if script else None
    same = bool(why) and not given and ran_this(script, info.get("script_sha256"))  # hashed: unchanged
    if same:
        roots, why = source_roots(run_dir, script), None
    if why:
        notes.append(f"the script {script} was not read ({why}): source lines are shown without code; "
                     "`--script PATH` reads it")
    index = index_source(script) if script and not why else None
    if index is not None and info.get("script_sha256") and not same:
        from .capture.runner import sha256

        if sha256(script) != info["script_sha256"]:
            notes.append(f"{script} changed since the run: lines may have moved")
    run = build_run(trace_path, run_dir, info, script, index, rundir.LINES_JSON if run_dir else None, notes, progress,
                    roots)
    if run.lines is None:
        notes.append("no line attribution: findings point at lines found statically")
    if run_dir:
        run = _with_ranks(run, run_dir, info, script, index, notes, roots)
    notes.extend(_steady_notes(info))
    findings, skipped, cheap = [], [], []
    rules = all_rules()
    for k, rule in enumerate(rules):
        if progress:
            progress("rules", k + 1, len(rules))
        if only and rule.id not in only:
            continue
        why = _skip_reason(rule, run)
        if why:
            skipped.append((rule.id, why))
            continue
        mine = [f for f in rule.detect(run) if not noqa(run, rule, f)]
        findings.extend(mine)
        cheap.extend(cheap_lines(run, rule, mine))
    findings, not_run = not_run_split(run, findings)
    if progress:
        progress("estimating", 0, 0)
    findings, combined = estimate_all(run, findings)
    trials = rundir.read_json(os.path.join(run_dir, rundir.TRIALS_JSON)) if run_dir else None
    if isinstance(trials, dict) and trials.get("script_sha256") == info.get("script_sha256"):
        findings = with_trials(findings, trials, run.root)
        left = untried(trials)
        if left:
            notes.append(left)
    else:
        trials = None
    findings.sort(key=lambda f: _rank(f, combined))
    for p in dict.fromkeys(os.path.abspath(f.path) for f in findings):
        why = why_not_read(p, roots)
        if why and os.path.exists(p) and not any(p in n for n in notes):
            notes.append(f"{p} was not read ({why}): its findings have no excerpt, diff or hash for apply")
    not_checked = {r for r, _ in skipped}
    checked = [r.id for r in rules if (not only or r.id in only) and r.id not in not_checked]
    return Analysis(run, run_dir, trace_path, findings, skipped, combined, checked, notes, not_run, cheap,
                    combined_trial(trials), roots)
