"""`trainprof lint`: each rule's static detector on fixtures, marked like ruff's.

tests/lint/<rule id>/<case>.py: lines ending in `# expect` are where the rule must
fire; it must fire nowhere else in the file. A case with no such line is one where
the rule must stay silent.
"""
import glob
import json
import os

import pytest

from conftest import run_cli
from trainprof.engine import all_rules
from trainprof.lint import lint_file

HERE = os.path.join(os.path.dirname(__file__), "lint")
CASES = sorted(glob.glob(os.path.join(HERE, "*", "*.py")))


def _expected(path: str) -> list[int]:
    return [n for n, line in enumerate(open(path, encoding="utf-8"), 1) if line.rstrip().endswith("# expect")]


@pytest.mark.parametrize("case", CASES, ids=[os.path.relpath(c, HERE) for c in CASES])
def test_lint_fixture(case):
    rule = os.path.basename(os.path.dirname(case))
    got = sorted({f.line for f in lint_file(case, {rule}).findings})
    assert got == _expected(case)


def test_every_static_rule_has_fixtures_both_ways():
    for r in all_rules():
        if r.lint is None:
            continue
        cases = glob.glob(os.path.join(HERE, r.id, "*.py"))
        assert any(_expected(c) for c in cases), f"{r.id}: no fixture where it fires"
        assert any(not _expected(c) for c in cases), f"{r.id}: no fixture where it must stay silent"


def test_lint_cli_formats_and_exit_code(tmp_path):
    script = os.path.join(HERE, "item-sync", "fires.py")
    r = run_cli("lint", script, "--select", "item-sync")
    assert r.returncode == 1 and "item-sync" in r.stdout  # medium by default fails
    r = run_cli("lint", script, "--select", "item-sync", "--fail-on", "never", "--format", "json")
    assert r.returncode == 0 and {f["rule"] for f in json.loads(r.stdout)} == {"item-sync"}
    out = tmp_path / "out.sarif"
    r = run_cli("lint", script, "--format", "sarif", "-o", str(out), "--fail-on", "high")
    doc = json.loads(out.read_text())
    assert doc["version"] == "2.1.0" and doc["runs"][0]["tool"]["driver"]["name"] == "trainprof"
    res = doc["runs"][0]["results"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert res and all(rules[x["ruleIndex"]]["id"] == x["ruleId"] for x in res)
    assert all(x["level"] in ("error", "warning", "note") and x["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
               for x in res)
    r = run_cli("lint", str(tmp_path / "missing.py"))
    assert r.returncode != 0 and "no such file" in r.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("for x in\n")
    r = run_cli("lint", str(bad))
    assert r.returncode == 1 and "cannot parse" in r.stderr and "Traceback" not in r.stderr
