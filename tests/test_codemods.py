"""Codemod fixtures: tests/codemods/<fix id>/<case>.in.py -> <case>.out.py, byte for byte.

A case with no .out.py is a form the codemod must leave alone. A first line
`# fixture: lines=12,14 every=100` gives the lines the findings point at and their
parameters (default: everywhere the pattern is, as with --static).
Every output must be stable: the codemod applied to it changes nothing.
"""
import glob
import os
import re

import pytest

from trainprof.fix.apply import all_codemods, fix_text

HERE = os.path.join(os.path.dirname(__file__), "codemods")
CASES = sorted(glob.glob(os.path.join(HERE, "*", "*.in.py")))


def _header(text: str):
    m = re.match(r"# fixture: (.*)\n", text)
    if not m:
        return None, {}
    opts = dict(kv.split("=", 1) for kv in m.group(1).split())
    lines = [int(x) for x in opts.pop("lines").split(",")] if "lines" in opts else None
    params = {k: int(v) if v.isdigit() else v for k, v in opts.items()}
    return lines, params


def _run(fix_id: str, path: str, text: str):
    _, codemod = all_codemods()[fix_id]
    lines, params = _header(text)
    sites = None if lines is None else {fix_id: {ln: params for ln in lines}}
    return fix_text(path, text, [codemod], sites)


@pytest.mark.parametrize("case", CASES, ids=[os.path.relpath(c, HERE) for c in CASES])
def test_codemod_fixture(case):
    fix_id = os.path.basename(os.path.dirname(case))
    text = open(case, encoding="utf-8").read()
    out_path = case[: -len(".in.py")] + ".out.py"
    got = _run(fix_id, case, text)
    if os.path.exists(out_path):
        want = open(out_path, encoding="utf-8").read()
        assert got.after == want
        assert any(n.applied for _, n in got.notes)
        again = _run(fix_id, out_path, want)
        assert again.after == want, "not idempotent: applying the fix to its output changed it"
    else:
        assert got.after == text, "a form the codemod must leave alone was rewritten"


def test_every_codemod_has_fixtures_both_ways():
    for fix_id, (_, c) in all_codemods().items():
        cases = glob.glob(os.path.join(HERE, fix_id, "*.in.py"))
        rewrites = [x for x in cases if os.path.exists(x[: -len(".in.py")] + ".out.py")]
        assert rewrites, f"{fix_id}: no before/after fixture"
        assert len(cases) > len(rewrites), f"{fix_id}: no fixture of a form it must refuse"
        assert c.safety in ("safe", "unsafe") and c.check and c.summary
