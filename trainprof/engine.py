"""Load -> index -> rules -> estimate: one analysis of one run, no output."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import pkgutil
from dataclasses import dataclass, field

from .capture import rundir
from .errors import TraceError
from .estimate import Combined, estimate_all
from .finding import Finding
from .rule import Context, Rule
from .source import index_source
from .trace import load_trace
from .trace import measures as M
from .trace.breakdown import breakdown
from .trace.lines import build_line_map, unprofiled_line_costs
from .trace.step_view import step_view


def _rules_package():
    """trainprof.rules: installed from rules/, or -- in a source checkout that was
    never installed -- loaded from rules/ beside the trainprof package."""
    try:
        return importlib.import_module("trainprof.rules")
    except ImportError:
        here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rules")
        spec = importlib.util.spec_from_file_location(
            "trainprof.rules", os.path.join(here, "__init__.py"), submodule_search_locations=[here])
        mod = importlib.util.module_from_spec(spec)
        sys.modules["trainprof.rules"] = mod
        spec.loader.exec_module(mod)
        return mod


def all_rules() -> list[Rule]:
    """Every module in trainprof.rules that defines RULE, in id order."""
    _rules_pkg = _rules_package()
    found = []
    for m in pkgutil.iter_modules(_rules_pkg.__path__):
        if m.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{_rules_pkg.__name__}.{m.name}")
        rule = getattr(mod, "RULE", None)
        if isinstance(rule, Rule):
            found.append(rule)
    return sorted(found, key=lambda r: r.id)


@dataclass
class Analysis:
    run: dict
    run_dir: str | None
    trace_path: str
    script: str | None
    device: str
    n_steps: int
    profiled_ms: float
    unprofiled_ms: float | None
    breakdown: dict
    findings: list[Finding]
    skipped: list[tuple[str, str]]
    combined: Combined | None
    notes: list[str] = field(default_factory=list)
    source: str | None = None  # the script's text as indexed (for excerpts in reports)
    view: dict | None = None  # one representative step, laid out for drawing (trace/step_view.py)
    checked: list[str] = field(default_factory=list)  # rules that ran (found something or not)
    ranks: list[dict] = field(default_factory=list)  # a distributed run: each rank's communication per step


def _rank_rows(ctx: Context) -> list[dict]:
    """Each rank's step, compute and communication per step (profiled ms), for the outputs."""
    x = ctx.cross_rank
    if x is None:
        return []
    return [{"rank": r.rank, "step_ms": r.step_us / 1000, "compute_ms": r.compute_us / 1000,
             "comm_ms": r.comm_us / 1000, "exposed_ms": r.exposed_us / 1000, "waited_ms": r.waited_us / 1000,
             "late_ms": r.late_us / 1000, "overlap": r.overlap, "last_share": r.last_share} for r in x.ranks]


def _skip_reason(rule: Rule, ctx: Context) -> str | None:
    if "cuda" in rule.needs and not ctx.trace.has_cuda:
        return "no CUDA activity in this run"
    if "source" in rule.needs and ctx.index is None:
        return "no script to read (pass --script)"
    if "memory" in rule.needs and not ctx.run.get("memory"):
        return "no GPU memory record in run.json (a run captured before trainprof recorded one)"
    if "ranks" in rule.needs and not ctx.ranks:
        return "not a distributed run (one trace)"
    if "lines" in rule.needs and ctx.lines is None:
        return "no line attribution (a bare trace has no line recorder log)"
    return None


def _rank(f, combined) -> tuple:
    """Estimated savings first, largest first; then upper bounds; then fixes that gain ~0 here."""
    base = combined.base_ms if combined else 0.0
    if f.estimate is None:
        tier = 3
    elif f.estimate.bound:
        tier = 1
    else:
        tier = 0 if base and f.saving_ms >= 0.01 * base else 2
    return (tier, -f.saving_ms, f.path, f.line)


def _loader_buffer_notes(run: dict) -> list[str]:
    """A multi-process DataLoader starts with workers x prefetch_factor batches queued:
    steps profiled before that queue drains can hide a loader that cannot keep up."""
    out = []
    last = max(run.get("active_steps") or [0]) + 1 + (run.get("schedule") or {}).get("wait", 0)
    for ld in run.get("loaders") or []:
        w, p = ld.get("num_workers") or 0, ld.get("prefetch_factor") or 2
        if w and last - (ld.get("first_step") or 0) <= w * p:
            out.append(f"the DataLoader queues up to {w * p} batches ({w} workers x prefetch_factor {p}) and the "
                       f"timed steps ended by about step {last}: loader waits may be understated; "
                       f"re-run with --wait {w * p + 5} to see the steady state")
    return out


def _context(trace_path: str, run_dir: str | None, run: dict, script: str | None, index, lines_name: str | None,
             notes: list[str], progress=None) -> Context:
    """One rank's trace, steps and line attribution, as the rules read them."""
    trace = load_trace(trace_path, progress)
    st = M.steps(trace, run.get("active_steps"))
    if len(st) == 0:
        raise TraceError(f"{trace_path}: no ProfilerStep#N spans: not a trace of training steps")
    lines = unprof_lines = None
    if run_dir and lines_name:
        try:
            doc = rundir.read_lines(run_dir, lines_name)
        except TraceError as e:  # the trace still stands: analyze it without line attribution
            doc = None
            notes.append(f"{lines_name} is damaged, so no line attribution: {e.message}")
        if doc:
            # Paths in the log are where the run happened; map them to where they are now.
            if script and run.get("script"):
                doc["files"] = [os.path.abspath(script) if f == run["script"] or os.path.basename(f) == os.path.basename(run["script"])
                                else f for f in doc["files"]]
            starts = {int(n): float(s) for n, s in zip(st.num, st.start)}
            ends = {int(n): float(e) for n, e in zip(st.num, st.end)}
            anchors = trace.ts[trace.name_mask(lambda n: n == M.ANCHOR)]
            op = M.on_thread(trace, st) & trace.cat_mask(M.CPU_OP)
            lines = build_line_map(doc, starts, ends, anchors.tolist(), ops=(trace.ts[op], trace.end[op]))
            clean = run.get("unprofiled_ms")
            unprof_lines = unprofiled_line_costs(doc, clean * 1000.0 if clean else None)
    return Context(trace, st, run, index, lines, os.path.abspath(script) if script else None,
                   unprof_lines if lines is not None else None)


def _rank_contexts(ctx: Context, run_dir: str, run: dict, script, index, notes: list[str]) -> tuple[Context, ...]:
    """Every rank's context, in rank order, ctx (rank 0) first; () for a single run."""
    recs = sorted(run.get("ranks") or [], key=lambda r: r["rank"])
    if len(recs) < 2:
        return ()
    out = []
    for rec in recs:
        if rec["rank"] == 0:
            out.append(ctx)
            continue
        path = os.path.join(run_dir, os.path.basename(rec["trace"]))
        if not os.path.isfile(path):
            notes.append(f"rank {rec['rank']}'s trace {rec['trace']} is missing: the cross-rank findings are not made")
            return ()
        own = dict(run, unprofiled_ms=rec.get("unprofiled_ms") or run.get("unprofiled_ms"))
        out.append(_context(path, run_dir, own, script, index, rec.get("lines"), []))
    return tuple(out)


def analyze(target: str, script: str | None = None, only: set[str] | None = None, progress=None) -> Analysis:
    """progress(phase, done, total), if given, hears how loading and the rules go."""
    run_dir, trace_path = rundir.resolve(target)
    run = (rundir.read_run(run_dir) if run_dir else None) or {}
    notes = list(run.get("notes") or [])  # from the capture (e.g. a retry without stacks)
    run = dict(run, unprofiled_ms=rundir.steady_unprofiled(run)) if run else run
    script = script or run.get("script")
    if script and not os.path.isfile(script) and run_dir:
        # A run copied elsewhere (sample_traces/): look for the script beside the run.
        alt = os.path.join(run_dir, os.path.basename(script))
        script = alt if os.path.isfile(alt) else None
        if script is None:
            notes.append("the script is not where it was run: source lines are shown without code")
    index = index_source(script) if script else None
    if index is not None and run.get("script_sha256"):
        from .capture.runner import sha256

        if sha256(script) != run["script_sha256"]:
            notes.append(f"{script} changed since the run: lines may have moved")
    ctx = _context(trace_path, run_dir, run, script, index, rundir.LINES_JSON if run_dir else None, notes, progress)
    if ctx.lines is None:
        notes.append("no line attribution: findings point at lines found statically")
    if run_dir:
        ctx.ranks = _rank_contexts(ctx, run_dir, run, script, index, notes)
    st = ctx.steps
    notes.extend(_loader_buffer_notes(run))
    findings, skipped = [], []
    rules = all_rules()
    for k, rule in enumerate(rules):
        if progress:
            progress("rules", k + 1, len(rules))
        if only and rule.id not in only:
            continue
        why = _skip_reason(rule, ctx)
        if why:
            skipped.append((rule.id, why))
            continue
        findings.extend(rule.detect(ctx))
    if progress:
        progress("estimating", 0, 0)
    findings, combined = estimate_all(ctx, findings)
    findings.sort(key=lambda f: _rank(f, combined))
    checked = [r.id for r in all_rules() if (not only or r.id in only) and r.id not in {s for s, _ in skipped}]
    return Analysis(
        run=run,
        run_dir=run_dir,
        trace_path=trace_path,
        script=ctx.script,
        device=run.get("device") or ctx.trace.device_name or ("cuda" if ctx.trace.has_cuda else "cpu"),
        n_steps=len(st),
        profiled_ms=ctx.step_us / 1000,
        unprofiled_ms=run.get("unprofiled_ms"),  # set by rundir.steady_unprofiled() above
        breakdown=breakdown(ctx),
        findings=findings,
        skipped=skipped,
        combined=combined,
        notes=notes,
        source=index.text if index is not None else None,
        view=step_view(ctx, findings),
        checked=checked,
        ranks=_rank_rows(ctx),
    )


def rule_for(name: str) -> Rule | None:
    """The rule with this id or alias."""
    for r in all_rules():
        if name == r.id or name in r.aliases:
            return r
    return None
