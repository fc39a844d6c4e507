"""`trainprof lint`: the rules' static detectors over scripts, with no run and no GPU.

A static finding is a pattern in the source, not a measurement: it carries no
estimate, and its severity says how often that pattern costs time in practice.
`trainprof analyze` measures what these only suspect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .config import find, load, suppressed
from .errors import TrainprofError
from .rule import all_rules
from .finding import Finding
from .source import index_source

SEVERITIES = ("info", "low", "medium", "high")


@dataclass
class Linted:
    path: str
    findings: list[Finding]


def lint_file(path: str, only: set[str] | None = None, options: dict | None = None) -> Linted:
    """The static findings of path: the rules in only (None: all), each with its options
    ([tool.trainprof.<id>]); a finding on a line with a `# noqa` for its rule is left out."""
    index = index_source(path)
    index.options = options or {}
    found: list[Finding] = []
    for rule in all_rules():
        if rule.lint is None or (only is not None and rule.id not in only):
            continue
        found.extend(f for f in rule.lint(index) if not suppressed(index.line_text(f.line), rule))
    rel = os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    found = [replace(f, path=rel, col=f.col or _col(index, f.line)) for f in found]
    found.sort(key=lambda f: (f.line, -SEVERITIES.index(f.severity), f.rule))
    return Linted(path, found)


def _col(index, line: int) -> int:
    """Where the line's code starts (1-based), as a linter shows a statement's column."""
    text = index.lines[line - 1] if 0 < line <= len(index.lines) else ""
    return len(text) - len(text.lstrip()) + 1


_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "build", "dist"}


def expand(paths) -> list[str]:
    """Files to lint: each file given, and the *.py files under each directory given
    (hidden folders, virtualenvs and build output skipped), in a stable order."""
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS
                                 and not os.path.exists(os.path.join(root, d, "pyvenv.cfg")))
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".py"))
        elif os.path.exists(p):  # a FIFO or device too: refused by name when it is read
            out.append(p)
        else:
            raise TrainprofError(f"no such file or directory: {p}")
    return out


def lint_paths(paths, select: set[str] | None = None, ignore: set[str] | None = None,
               config: str | None = None) -> tuple[list[Linted], list[str]]:
    """Lint every file, each with its project's configuration (the nearest pyproject.toml with
    [tool.trainprof], or the file `config` names), the command line's select and ignore over it;
    a file that does not parse is an error line, not the end of the run."""
    linted, errors = [], []
    cache: dict = {}
    found: dict = {}  # folder -> its pyproject.toml: searched (and parsed) once a folder, not once a file
    for f in expand(paths):
        try:
            d = os.path.dirname(os.path.abspath(f))
            if not config and d not in found:
                found[d] = find(f)
            where = config or found[d]
            if where not in cache:
                cache[where] = load(where)
            cfg = cache[where]
            linted.append(lint_file(f, cfg.rules(select, ignore), cfg.options))
        except TrainprofError as e:
            if config:  # one configuration for all: a bad one stops the run
                raise
            errors.append(str(e))
    return linted, errors


def at_least(findings: list[Finding], severity: str) -> list[Finding]:
    k = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(f.severity) >= k]


def render(linted: list[Linted], fmt: str) -> str:
    """The lint report as text (path:line: rule [severity] message), JSON, or SARIF 2.1.0."""
    import json

    found = [f for lt in linted for f in lt.findings]
    if fmt == "sarif":
        from .report.sarif import to_sarif

        return json.dumps(to_sarif(linted, all_rules()), indent=1) + "\n"
    if fmt == "json":
        return json.dumps([{"rule": f.rule, "severity": f.severity, "path": f.path, "line": f.line, "column": f.col,
                            "message": f.message, "fix": f.fix.summary if f.fix else None} for f in found],
                          indent=1) + "\n"
    text = "".join(f"{f.path}:{f.line}:{f.col or 1}: {f.rule} [{f.severity}] {f.message}\n" for f in found)
    return text + f"{len(found)} finding(s) in {len(linted)} file(s) (static: suspected, not measured)\n"


def statistics(linted: list[Linted]) -> str:
    """Findings counted by rule, most first (ruff's --statistics)."""
    from collections import Counter

    n = Counter(f.rule for lt in linted for f in lt.findings)
    width = max((len(str(c)) for c in n.values()), default=1)
    return "".join(f"{c:>{width}}\t{r}\n" for r, c in sorted(n.items(), key=lambda kv: (-kv[1], kv[0])))
