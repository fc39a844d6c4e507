"""`trainprof lint`: the rules' static detectors over scripts, with no run and no GPU.

A static finding is a pattern in the source, not a measurement: it carries no
estimate, and its severity says how often that pattern costs time in practice.
`trainprof analyze` measures what these only suspect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .engine import all_rules
from .finding import Finding
from .source import index_source

SEVERITIES = ("info", "low", "medium", "high")


@dataclass
class Linted:
    path: str
    findings: list[Finding]


def lint_file(path: str, only: set[str] | None = None) -> Linted:
    index = index_source(path)
    found: list[Finding] = []
    for rule in all_rules():
        if rule.lint is None or (only and rule.id not in only):
            continue
        found.extend(rule.lint(index))
    rel = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    found = [f if f.path == rel else _with_path(f, rel) for f in found]
    found.sort(key=lambda f: (f.line, -SEVERITIES.index(f.severity), f.rule))
    return Linted(path, found)


def _with_path(f: Finding, path: str) -> Finding:
    from dataclasses import replace

    return replace(f, path=path)


def at_least(findings: list[Finding], severity: str) -> list[Finding]:
    k = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f.severity) >= k]
