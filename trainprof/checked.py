"""A rule's findings held against the source: code that did not run in the recorded steps, a
`# noqa` on the line, and what `trainprof lint` suspects where the run found nothing (said so,
not dropped without a word)."""

from __future__ import annotations

import os

from .config import suppressed
from .finding import Finding
from .rule import Rule
from .run import Run


def not_run_split(run: Run, findings: list[Finding]) -> tuple[list[Finding], list[Finding]]:
    """(findings, the static ones at training-loop lines that did not run in the recorded steps:
    a branch not taken is no cost of this run)."""
    keep, gone = [], []
    for f in findings:
        off = (f.saving is None and run.script is not None and os.path.abspath(f.path) == run.script
               and run.ran(f.line) is False)
        (gone if off else keep).append(f)
    return keep, gone


def noqa(run: Run, rule: Rule, f: Finding) -> bool:
    """A finding on a line of the loop's file whose `# noqa` names its rule (or all): left out, as lint does."""
    return (run.index is not None and run.script is not None and os.path.abspath(f.path) == run.script
            and suppressed(run.index.line_text(f.line), rule))


def cheap(run: Run, rule: Rule, found: list[Finding]) -> list[tuple[str, str, int, float | None]]:
    """The lines `trainprof lint` flags for a measured rule that found nothing in this run: cheap
    here, said so rather than dropped without a word (with the lines' own time per step on the
    training thread, unprofiled)."""
    if (rule.lint is None or getattr(rule.detect, "static", False) or run.index is None or run.lines is None
            or any(f.rule == rule.id for f in found)):  # measured somewhere: its finding says where
        return []
    out = []
    for f in rule.lint(run.index):
        if run.ran(f.line) is False or suppressed(run.index.line_text(f.line), rule):
            continue
        # a line of the step has a time of its own; a construction (an optimizer, a DataLoader) has none that counts
        iv = [x for ln in range(f.line, (f.end_line or f.line) + 1) for x in run.line_time(run.script, ln)[0]]
        out.append((rule.id, run.relpath(), f.line, run.cpu_ms(iv) if run.index.in_loop(f.line) else None))
    return out
