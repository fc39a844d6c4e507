"""analysis.json: the versioned, documented schema (see README: "analysis.json")."""

from __future__ import annotations

import msgspec

from ..engine import Analysis
from ..files import write_atomic
from ..finding import Finding

SCHEMA = 1


def _finding(f: Finding) -> dict:
    e = f.estimate
    return {
        "rule": f.rule,
        "title": f.title,
        "path": f.path,
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
    }


def to_dict(a: Analysis) -> dict:
    b = a.breakdown
    return {
        "schema": SCHEMA,
        "script": a.script,
        "script_sha256": a.run.get("script_sha256"),
        "argv": a.run.get("argv"),
        "trace": a.trace_path,
        "device": a.device,
        "torch": a.run.get("torch"),
        "steps": {
            "count": a.n_steps,
            "profiled_ms": round(a.profiled_ms, 4),
            "unprofiled_ms": round(a.unprofiled_ms, 4) if a.unprofiled_ms else None,
            "gpu_busy": round(b["gpu_busy"], 4) if b.get("gpu_busy") is not None else None,
            "breakdown": {k: round(v, 4) for k, v in b["parts"].items()},
        },
        "findings": [_finding(f) for f in a.findings],
        "skipped": [{"rule": r, "reason": why} for r, why in a.skipped],
        "estimate": None if a.combined is None else {
            "combined_speedup": round(a.combined.speedup, 4),
            "step_ms": round(a.combined.base_ms, 4),
            "new_step_ms": round(a.combined.new_ms, 4),
            "after": a.combined.after,
            "calibration": a.combined.calibration,
        },
        "ranks": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in a.ranks],
        "notes": a.notes,
        "files": _file_hashes(a),
    }


def _file_hashes(a: Analysis) -> dict:
    """sha256 of each file a finding points at, as analysed: `trainprof apply` refuses
    to rewrite one that has changed since (the script's hash is the one it ran with)."""
    import os

    from ..capture.runner import sha256

    out = {}
    script = os.path.abspath(a.script) if a.script else None
    for f in a.findings:
        p = os.path.abspath(f.path)
        if p in out or not os.path.isfile(p):
            continue
        out[p] = a.run.get("script_sha256") if p == script and a.run.get("script_sha256") else sha256(p)
    return out


def _plain(o):
    # numpy scalars from the measures
    if hasattr(o, "item"):
        return o.item()
    raise NotImplementedError(type(o).__name__)


def write(a: Analysis, path: str) -> None:
    doc = to_dict(a)
    try:
        data = msgspec.json.format(msgspec.json.encode(doc, enc_hook=_plain), indent=1)
    except UnicodeEncodeError:  # a lone surrogate (a non-UTF-8 argv or path): escaped as \udcXX
        import json

        data = json.dumps(doc, ensure_ascii=True, indent=1, default=_plain).encode()
    write_atomic(path, data)
