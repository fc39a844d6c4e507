"""What `trainprof apply` applies, and from which run.

`--fix` takes, comma-separated: a fix id (one codemod, at every finding of its rule), a rule id
(all of the rule's codemods), a finding's number as the terminal and the HTML report show it
(`3`: that finding's fix there alone), or `ID@LINE` / `ID@PATH:LINE` (the fix of the finding of
that rule at that line). The run: RUN_DIR as given, the newest run of SCRIPT, or the newest
run under the logdir -- named on apply's first line, whichever it was.
"""

from __future__ import annotations

import glob
import os
import re
import time
from dataclasses import dataclass, field

from ..capture import rundir
from ..errors import TrainprofError, UsageError
from .apply import FixError, all_codemods
from .codemod import Codemod

_AT = re.compile(r"^(?P<name>[\w.-]+)@(?:(?P<path>.+):)?(?P<line>\d+)$")


@dataclass
class Choice:
    """The codemods chosen: `everywhere` act at every finding of their rule, `picked` at one
    finding each (its index in analysis.json's findings, the report's number minus one)."""

    everywhere: list[Codemod] = field(default_factory=list)
    picked: dict[int, list[Codemod]] = field(default_factory=dict)


def _by_name(name: str) -> list[Codemod]:
    """A fix id names one codemod; a rule id (where no fix has that id) all of the rule's."""
    known = all_codemods()
    hits = [c for fid, (_, c) in known.items() if fid == name] or \
        [c for _, (rid, c) in known.items() if rid == name]
    if not hits:
        raise UsageError(f"no fix {name!r}: the fixes are {', '.join(known)} (or a finding's number, or ID@LINE)")
    return hits


def _sorted(mods) -> list[Codemod]:
    order = list(all_codemods())
    out = []
    for c in mods:
        if c not in out:
            out.append(c)
    return sorted(out, key=lambda c: order.index(c.id))


def check(words: list[str]) -> None:
    """--fix's names known (before any run is looked for); numbers are checked against the run."""
    for w in words:
        if not w.isdigit():
            m = _AT.match(w)
            _by_name(m["name"] if m else w)


def choose(words: list[str] | None, all_safe: bool, findings: list[dict] | None = None) -> Choice:
    """--fix's words (and --all-safe) as codemods; findings: the analysis' (None: --static,
    where a finding's number or line means nothing)."""
    known = all_codemods()
    out = Choice([c for _, c in known.values() if c.safety == "safe"] if all_safe else [])
    for w in words or ():
        if w.isdigit() or _AT.match(w):
            if findings is None:
                raise UsageError(f"--fix {w} picks a finding of a run's analysis: not with --static")
            for k, mods in _pick(w, findings).items():
                out.picked[k] = _sorted(out.picked.get(k, []) + mods)
        else:
            out.everywhere = _sorted(out.everywhere + _by_name(w))
    if not out.everywhere and not out.picked:
        raise UsageError("say which fixes: --fix ID[,ID], --fix N (a finding's number in the report), "
                         "or --all-safe (`trainprof rules` lists the fixes)")
    return out


def _where(n: int, f: dict) -> str:
    return f"#{n} {f['rule']} at {f['path']}:{f['line']}"


def _pick(word: str, findings: list[dict]) -> dict[int, list[Codemod]]:
    known = all_codemods()
    if word.isdigit():
        k = int(word) - 1
        if not 0 <= k < len(findings):
            raise UsageError(f"--fix {word}: no finding {word}; the analysis has "
                             + (f"findings 1 to {len(findings)}" if findings else "no findings"))
        f = findings[k]
        fid = (f.get("fix") or {}).get("id")
        if fid not in known or known[fid][0] != f["rule"]:
            raise UsageError(f"--fix {word}: finding {_where(k + 1, f)} has no fix to apply (advice only)")
        return {k: [known[fid][1]]}
    m = _AT.match(word)
    mods = _by_name(m["name"])
    rules = {known[c.id][0] for c in mods}
    line, path = int(m["line"]), m["path"]
    of_rule = [(k, f) for k, f in enumerate(findings) if f["rule"] in rules]
    hits = [(k, f) for k, f in of_rule if f["line"] == line and (path is None or _same_path(path, f["path"]))]
    if not hits:
        seen = "; ".join(_where(k + 1, f) for k, f in of_rule[:8]) or "none"
        raise UsageError(f"--fix {word}: no {'/'.join(sorted(rules))} finding at "
                         f"{path + ':' if path else 'line '}{line} (the analysis has: {seen})")
    if len({f["path"] for _, f in hits}) > 1:
        raise UsageError(f"--fix {word}: line {line} in more than one file ("
                         + "; ".join(_where(k + 1, f) for k, f in hits) + "): give ID@PATH:LINE or the number")
    return {k: [c for c in mods if known[c.id][0] == f["rule"]] for k, f in hits}


def _same_path(given: str, found: str) -> bool:
    g, f = os.path.normpath(given), os.path.normpath(found)
    return f == g or f.endswith(os.sep + g) or g.endswith(os.sep + f)


# -- which run --------------------------------------------------------------------------

def _analysed(logdir: str) -> list[str]:
    return [d for d in glob.glob(os.path.join(logdir, "*")) if os.path.isfile(os.path.join(d, rundir.ANALYSIS_JSON))]


def _mtime(d: str) -> float:
    return os.path.getmtime(os.path.join(d, rundir.ANALYSIS_JSON))


def script_path(run_dir: str, a: dict) -> str | None:
    """The analysed script, as analysis.json names it (relative to its root, itself relative to the run)."""
    script, root = a.get("script"), a.get("root")
    if not isinstance(script, str) or "\0" in script + (root or ""):
        return None
    return os.path.normpath(os.path.join(run_dir, root, script) if root is not None else script)


def _script_of(d: str) -> str | None:
    """The script a run's analysis is of (resolved), None where analysis.json is unreadable."""
    try:
        a = rundir.read_analysis(d) or {}
    except TrainprofError:  # a damaged or planted analysis.json: not this script's run
        return None
    p = script_path(d, a)
    return os.path.realpath(p) if p else None


def find_run(target: str | None, logdir: str = "trainprof_runs") -> tuple[str, str]:
    """(run directory, how it was chosen) for RUN_DIR, SCRIPT or nothing."""
    if target and os.path.isdir(target):
        return target, "as given"
    if target and os.path.isfile(target):
        me = os.path.realpath(target)
        runs = [d for d in _analysed(logdir) if _script_of(d) == me]
        if not runs:
            raise FixError(f"no analysed run of {target} under {logdir}/: run `trainprof analyze {target}` first, "
                           "give its RUN_DIR, or fix the patterns without a run (--static)")
        return max(runs, key=_mtime), f"the newest run of {target} under {logdir}/"
    if target:
        raise FixError(f"no such run directory or script: {target}")
    runs = _analysed(logdir)
    if not runs:
        raise FixError(f"no analysed run under {logdir}/: run `trainprof analyze SCRIPT` first, "
                       "or give RUN_DIR, or a script with --static")
    return max(runs, key=_mtime), f"the newest run under {logdir}/"


def describe(run_dir: str, how: str, a: dict) -> str:
    """apply's first line: which run, of which script, analysed when, chosen how."""
    p = script_path(run_dir, a)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(_mtime(run_dir)))
    return f"run {os.path.relpath(run_dir)} of {os.path.relpath(p) if p else '?'}, analysed {when} ({how})"
