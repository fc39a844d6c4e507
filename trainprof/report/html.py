"""report.html: one self-contained page (inline CSS, no network), rendered with
jinja2 and autoescape from templates/report.html.j2. Its one script (templates/report.js:
the timeline's zoom, a command's copy button) runs by its hash in the page's content security
policy, which blocks any other."""

from __future__ import annotations

import base64
import hashlib
import os
import shlex

import jinja2

from ..errors import TrainprofError
from ..files import write_atomic
from ..finding import fmt_num
from ..source.index import read_source
from . import jsonout
from .breakdown import LABELS, PARTS
from .extras import install_hint
from .prepare import MAX_FINDINGS, Report

EXCERPT = 3  # lines shown either side of a finding's line
# The page stays small whatever the run: these bound what grows with the script or the trace
# (the timeline's bounds are in trace/step_view.py). analysis.json keeps everything whole.
MAX_TEXT = 2000  # characters of any one text (a message, a name from the trace, an argument)
MAX_LINE = 400  # characters of one source or diff line
MAX_DIFF_LINES = 150  # lines of one fix's diff (`trainprof apply --dry-run` prints it all)


def _templates_dir() -> str:
    """templates/ installed as trainprof.templates, or beside the package in a checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for d in (os.path.join(here, "templates"), os.path.join(os.path.dirname(here), "templates")):
        if os.path.isfile(os.path.join(d, "report.html.j2")):
            return d
    raise FileNotFoundError("templates/report.html.j2 is not installed with trainprof")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_templates_dir()), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["basename"] = os.path.basename
    env.filters["num"] = fmt_num
    env.filters["x"] = lambda v: f"{v:.2f}x" if v < 10 else f"{v:.3g}x"  # 1.04x, 3.81x, 177x
    env.filters["clip"] = _clip
    return env


def _script() -> tuple[str, str]:
    """report.js as the page holds it, and its CSP source ('sha256-...' of those exact bytes)."""
    with open(os.path.join(_templates_dir(), "report.js"), encoding="utf-8") as f:
        text = f.read()
    if "</script" in text.lower() or not text.isascii():  # it must end where the page's tag does, byte for byte
        raise ValueError("templates/report.js: not ASCII, or holds '</script'")
    return text, "sha256-" + base64.b64encode(hashlib.sha256(text.encode("ascii")).digest()).decode("ascii")


def apply_command(run_dir: str, f: dict, n: int) -> str:
    """The command that makes finding number n's fix there alone (`--fix N`: the number this page
    and the terminal show). The one place the page words it."""
    return f"trainprof apply {shlex.quote(os.path.abspath(run_dir))} --fix {n}"


def _clip(text: str, n: int = MAX_TEXT) -> str:
    return text if len(text) <= n else f"{text[:n]}… [{len(text) - n} more characters]"


def _clip_all(x, skip=("diff",)):
    """Every string in a document clipped to MAX_TEXT (keys in skip: left to their own bound)."""
    if isinstance(x, str):
        return _clip(x)
    if isinstance(x, dict):
        return {k: v if k in skip else _clip_all(v, skip) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_clip_all(v, skip) for v in x)
    return x


def _clip_diff(diff: str | None) -> str | None:
    if not diff:
        return diff
    lines = diff.splitlines()
    out = [_clip(ln, MAX_LINE) for ln in lines[:MAX_DIFF_LINES]]
    if len(lines) > MAX_DIFF_LINES:
        out.append(f"… {len(lines) - MAX_DIFF_LINES} more lines (`trainprof apply --dry-run` prints them all)")
    return "\n".join(out)


def _excerpt(lines: list[str] | None, line: int) -> list[tuple[int, str, bool]]:
    if not lines or not 0 < line <= len(lines):
        return []
    lo, hi = max(1, line - EXCERPT), min(len(lines), line + EXCERPT)
    return [(n, _clip(lines[n - 1], MAX_LINE), n == line) for n in range(lo, hi + 1)]


def _line_text(a, rel: str, line: int, texts: dict) -> str:
    """One line of a source the report may read (Analysis.may_read), clipped; '' otherwise."""
    path = os.path.realpath(os.path.join(a.run.root, rel))
    if path not in texts:
        texts[path] = None
        if a.may_read(path):
            try:
                texts[path] = read_source(path).splitlines()
            except (OSError, ValueError, TrainprofError):
                pass
    lines = texts[path]
    return _clip(lines[line - 1].strip(), MAX_LINE) if lines and 0 < line <= len(lines) else ""


def render(rep: Report) -> str:
    a = rep.analysis
    doc = jsonout.to_dict(rep)
    b = rep.breakdown
    total = b["step_ms"] or 1.0
    parts = [{"key": k, "label": LABELS[k], "ms": b["parts"][k], "share": b["parts"][k] / total} for k in PARTS]
    hidden = max(0, len(doc["findings"]) - MAX_FINDINGS)
    doc["findings"] = doc["findings"][:MAX_FINDINGS]
    for n, (f, src_f) in enumerate(zip(doc["findings"], rep.findings), 1):
        f["diff"] = src_f.fix.diff if src_f.fix is not None else None
        f["apply"] = apply_command(a.run_dir, f, n) if f["diff"] and a.run_dir else None
    doc = _clip_all(doc, skip=("diff", "apply"))  # a command clipped would be another command
    src = a.source.splitlines() if a.source else None
    texts: dict = {}
    for f in doc["findings"]:
        f["excerpt"] = _excerpt(src, f["line"])
        f["diff"] = _clip_diff(f["diff"])
        for h in f.get("hot_lines") or []:
            h["code"] = _line_text(a, h["path"], h["line"], texts)
    for r in doc["lines"]:
        r["code"] = _line_text(a, r["path"], r["line"], texts)
        r["findings"] = [n for n, f in enumerate(doc["findings"], 1) if (f["path"], f["line"]) == (r["path"], r["line"])]
    script, script_hash = _script()
    found = {f.rule for f in a.findings}
    fine = [(r, rep.titles.get(r, r)) for r in a.checked if r not in found]
    logdir = os.path.dirname(os.path.abspath(a.run_dir)) if a.run_dir else os.path.dirname(a.trace_path)
    return _env().get_template("report.html.j2").render(a=doc, steady=rep.steady, parts=parts, logdir=logdir, view=rep.view, fine=fine,
                                                        run_dir=a.run_dir, labels=LABELS, hidden_findings=hidden,
                                                        heading=a.script or a.trace_path, script=script,
                                                        script_hash=script_hash, tb_install=install_hint(missing_only=True))


def write(rep: Report, path: str) -> None:
    # A lone surrogate (an argument or a file name that was not UTF-8, kept by Python as
    # surrogateescape) would stop a strict encode: it is shown as its \udcXX escape.
    write_atomic(path, render(rep).encode("utf-8", "backslashreplace"))
