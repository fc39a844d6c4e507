"""analysis.json: the versioned, documented schema (see README: "analysis.json")."""

from __future__ import annotations

import os

import msgspec

from ..files import write_atomic
from ..finding import Finding
from .prepare import Report

SCHEMA = 2


def _rel(path: str | None, base: str) -> str | None:
    """path relative to base where it lies under it (as written: `a/b.py`), else absolute."""
    if not path:
        return path
    p = os.path.abspath(path)
    try:
        inside = os.path.commonpath([p, base]) == base
    except ValueError:  # another drive
        inside = False
    return os.path.relpath(p, base) if inside else p


def _finding(f: Finding, root: str) -> dict:
    e = f.estimate
    return {
        "rule": f.rule,
        "title": f.title,
        "path": _rel(f.path, root),
        "line": f.line,
        "end_line": f.end_line,
        "severity": f.severity,
        "message": f.message,
        "evidence": [{"label": ev.label, "value": ev.value, "unit": ev.unit} for ev in f.evidence],
        "saving_ms": round(e.saving_ms, 4) if e else None,
        "speedup": round(e.speedup, 4) if e else None,
        "estimate": None if e is None else {
            "basis": e.basis, "confidence": e.confidence, "upper_bound": e.bound, "after": e.after,
        },
        "fix": None if f.fix is None else {"id": f.fix.id, "safety": f.fix.safety, "summary": f.fix.summary,
                                           **({"params": f.fix.params} if f.fix.params else {})},
        "trial": None if f.trial is None else {
            "speedup": round(f.trial.speedup, 4), "low": round(f.trial.low, 4), "high": round(f.trial.high, 4),
            "rounds": f.trial.rounds, "params": dict(f.trial.params or {}), "change": f.trial.change,
            "parity": f.trial.parity, "steps": f.trial.steps, "agrees": f.trial.agrees},
        **({"hot_lines": [{"path": _rel(h.path, root), "line": h.line, "ms": round(h.ms, 4)} for h in f.hot_lines]}
           if f.hot_lines else {}),
    }


def _steady(st: dict | None) -> dict | None:
    """The search for steady state, as run.json keeps it: reached, after how many steps, the
    spread of the steps and the recurring spikes left out."""
    if not st:
        return None
    keys = ("reached", "searched", "steps", "step_ms", "p10_ms", "p50_ms", "p90_ms", "period", "spike_ms", "outliers")
    return {k: round(st[k], 4) if isinstance(st.get(k), float) else st.get(k) for k in keys}


def _rounded(row: dict) -> dict:
    return {k: round(float(v), 4) if isinstance(v, float) else v for k, v in row.items()}


def to_dict(rep: Report) -> dict:
    """The document. Paths are relative to `root` (the script's folder), and `root` and `trace`
    to the run directory where they lie in it: a run that carries its script reads the same
    wherever it is."""
    a, b = rep.analysis, rep.breakdown
    root = os.path.abspath(a.run.root)
    here = os.path.abspath(a.run_dir) if a.run_dir else None
    return {
        "schema": SCHEMA,
        "root": _rel(root, here) if here else root,
        "script": _rel(a.script, root),
        "script_sha256": a.info.get("script_sha256"),
        "argv": a.info.get("argv"),
        "trace": _rel(a.trace_path, here) if here else os.path.abspath(a.trace_path),
        "device": a.device,
        "torch": a.info.get("torch"),
        "steps": {
            "count": a.n_steps,
            "profiled_ms": round(a.profiled_ms, 4),
            "unprofiled_ms": round(a.unprofiled_ms, 4) if a.unprofiled_ms else None,
            "gpu_busy": round(b["gpu_busy"], 4) if b.get("gpu_busy") is not None else None,
            "breakdown": {k: round(v, 4) for k, v in b["parts"].items()},
        },
        "steady": _steady(a.info.get("steady")),
        "precision": a.run.precision,  # bf16/TF32 ratios timed on the run's device (None: the rule's table)
        "findings": [_finding(f, root) for f in rep.findings],
        "skipped": [{"rule": r, "reason": why} for r, why in a.skipped],
        "not_run": [{"rule": f.rule, "path": _rel(f.path, root), "line": f.line} for f in a.not_run],
        # what lint flags, measured cheap here (unprofiled ms per step)
        "cheap": [{"rule": r, "path": _rel(p, root), "line": ln, "ms": None if ms is None else round(ms, 4)} for r, p, ln, ms in a.cheap],
        "estimate": None if a.combined is None else {
            "combined_speedup": round(a.combined.speedup, 4),
            "step_ms": round(a.combined.base_ms, 4),
            "new_step_ms": round(a.combined.new_ms, 4),
            "after": a.combined.after,
            "calibration": a.combined.calibration,
        },
        "trial": a.trial,
        "ranks": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rep.ranks],
        # the costliest lines (unprofiled ms per step) and ops (profiled), each a top N
        "lines": [dict(_rounded(r), path=_rel(r["path"], root)) for r in rep.lines],
        "ops": {k: [_rounded(r) for r in (rep.ops or {}).get(k, [])] for k in ("gpu", "cpu")},
        "notes": a.notes,
        "files": {_rel(p, root): h for p, h in rep.files.items()},
    }


def _plain(o):
    # numpy scalars from the measures
    if hasattr(o, "item"):
        return o.item()
    raise NotImplementedError(type(o).__name__)


def encode(rep: Report) -> bytes:
    doc = to_dict(rep)
    try:
        return msgspec.json.format(msgspec.json.encode(doc, enc_hook=_plain), indent=1)
    except UnicodeEncodeError:  # a lone surrogate (a non-UTF-8 argv or path): escaped as \udcXX
        import json

        return json.dumps(doc, ensure_ascii=True, indent=1, default=_plain).encode()


def write(rep: Report, path: str) -> None:
    write_atomic(path, encode(rep))
