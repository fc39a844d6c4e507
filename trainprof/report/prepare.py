"""What the outputs show of an analysis, computed once before any of them renders: where
the step's time goes, one step laid out for drawing, the per-rank table, the costliest lines
and ops, the hash of every file a finding points at, and each fixable finding's diff preview. The renderers
(terminal.py, jsonout.py, html.py) only render a Report."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..engine import Analysis
from ..finding import Finding
from ..rule import all_rules
from .breakdown import breakdown
from .step_view import step_view
from .tables import line_rows, op_rows

MAX_FINDINGS = 100  # findings the HTML page shows (and previews), the costliest; it counts the others


@dataclass(frozen=True, eq=False)
class Report:
    analysis: Analysis
    findings: list[Finding]  # the analysis' findings, in its order; fixes carry their diff preview
    files: dict[str, str]  # absolute path -> sha256 of each file a finding points at, as analysed
    breakdown: dict
    view: dict | None  # one representative step, laid out for drawing
    ranks: list[dict]  # a distributed run: each rank's communication per step
    titles: dict[str, str]  # rule id -> title
    steady: str | None = None  # the search for steady state, in a sentence (None: no search made)
    lines: tuple = ()  # the user's costliest lines per step (tables.line_rows)
    ops: dict | None = None  # the costliest GPU and CPU ops per step (tables.op_rows)


def _rank_rows(run) -> list[dict]:
    """Each rank's step, compute and communication per step (profiled ms)."""
    x = run.cross_rank
    if x is None:
        return []
    return [{"rank": r.rank, "step_ms": r.step_us / 1000, "compute_ms": r.compute_us / 1000,
             "comm_ms": r.comm_us / 1000, "exposed_ms": r.exposed_us / 1000, "waited_ms": r.waited_us / 1000,
             "late_ms": r.late_us / 1000, "overlap": r.overlap, "last_share": r.last_share} for r in x.ranks]


def file_hashes(a: Analysis) -> dict[str, str]:
    """sha256 of each file a finding points at, as analysed: `trainprof apply` refuses to
    rewrite one that has changed since (the script's hash is the one it ran with)."""
    from ..capture.runner import sha256

    out = {}
    script = os.path.abspath(a.script) if a.script else None
    recorded = a.info.get("script_sha256")
    for f in a.findings:
        p = os.path.abspath(f.path)
        if p in out or not os.path.isfile(p) or not a.may_read(p):
            continue
        out[p] = recorded if p == script and recorded else sha256(p)
    return out


def _previews(a: Analysis, files: dict[str, str]) -> list[Finding]:
    """Each fixable finding with the diff its codemod would make there (None: nothing it can
    rewrite, or a file changed since the run: its lines may have moved). Each file is hashed,
    and each (file, fix, line) previewed, once however many findings share it."""
    from ..capture.runner import sha256
    from ..fix.apply import preview

    now: dict = {}
    diffs: dict = {}
    out = []
    for k, f in enumerate(a.findings):
        fx = f.fix
        diff = None
        if fx is not None and fx.safety and k < MAX_FINDINGS:
            path = os.path.abspath(f.path)
            if path in files and path not in now:
                now[path] = sha256(path)
            if path in files and now[path] == files[path]:
                key = (path, fx.id, f.line, repr(fx.params))
                if key not in diffs:
                    index = a.run.index if a.run.index is not None and a.run.index.path == path else None
                    diffs[key] = preview(path, fx.id, f.line, fx.params, index=index)
                diff = diffs[key]
        out.append(replace(f, fix=replace(fx, diff=diff)) if fx is not None else f)
    return out


def steady_text(st: dict | None) -> str | None:
    """run.json's steady state as the outputs say it: reached or not, the spread of the steps,
    the recurring spike left out."""
    st = st or {}
    if not (st.get("p50_ms") and st.get("searched")):
        return None
    return (f"steady state {'reached' if st.get('reached') else 'NOT reached'} after {st.get('steps')} steps; "
            f"steps p10 {st['p10_ms']:.3g} / p50 {st['p50_ms']:.3g} / p90 {st['p90_ms']:.3g} ms"
            + (f"; a {st['spike_ms']:.3g} ms spike every {st['period']} steps, left out" if st.get("period") else ""))


def prepare(a: Analysis) -> Report:
    files = file_hashes(a)
    findings = _previews(a, files)
    return Report(a, findings, files, breakdown(a.run), step_view(a.run, findings), _rank_rows(a.run),
                  {r.id: r.title for r in all_rules()}, steady_text(a.info.get("steady")),
                  tuple(line_rows(a.run)), op_rows(a.run))
