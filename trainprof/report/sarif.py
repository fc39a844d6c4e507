"""SARIF 2.1.0 for `trainprof lint --format sarif` (code-scanning UIs read it)."""

from __future__ import annotations

from .. import __version__

LEVEL = {"high": "error", "medium": "warning", "low": "note", "info": "note"}


def _rule(r) -> dict:
    first = r.doc.strip().splitlines()[0] if r.doc.strip() else r.title
    return {
        "id": r.id,
        "name": "".join(w.capitalize() for w in r.id.split("-")),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": first},
        "help": {"text": r.doc.strip(), "markdown": r.doc.strip()},
        "properties": {"category": r.category, "fix": r.fix_safety or "advice"},
    }


def to_sarif(linted, rules) -> dict:
    used = sorted({f.rule for lt in linted for f in lt.findings})
    index = {r.id: r for r in rules}
    results = []
    for lt in linted:
        for f in lt.findings:
            results.append({
                "ruleId": f.rule,
                "ruleIndex": used.index(f.rule),
                "level": LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": f.path.replace("\\", "/")},
                    "region": {"startLine": f.line, **({"startColumn": f.col} if f.col else {}),
                               **({"endLine": f.end_line} if f.end_line else {})},
                }}],
                "properties": {"severity": f.severity, **({"fix": f.fix.summary} if f.fix else {})},
            })
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "trainprof", "version": __version__, "semanticVersion": __version__,
                                "informationUri": "https://github.com/trainprof/trainprof",
                                "rules": [_rule(index[r]) for r in used]}},
            "results": results,
        }],
    }
