"""Lint configured as ruff is: `# noqa`, columns, [tool.trainprof] in pyproject.toml (select,
ignore, a rule's options) under the command line's --select/--ignore, --statistics and
--output-format (config.py, lint.py)."""
import json
import os
import shutil

from conftest import SAMPLES, run_cli

from trainprof.config import load, noqa
from trainprof.engine import analyze
from trainprof.lint import lint_paths

SCRIPT = """import torch
model = torch.nn.Linear(4, 4).cuda()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(10):
    loss = model(torch.randn(2, 4, device="cuda")).sum()
    a = loss.item()  # noqa: item-sync
    b = loss.item()  # noqa
    c = loss.item()  # noqa: F401 (another tool's code)
    print(loss)
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def _project(tmp_path, toml=None):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "train.py").write_text(SCRIPT)
    if toml is not None:
        (tmp_path / "pyproject.toml").write_text(toml)
    return str(tmp_path / "pkg")


def _found(linted):
    return {(f.rule, f.line) for lt in linted for f in lt.findings}


def test_noqa_forms():
    assert noqa("x.item()  # noqa") == set()
    assert noqa("x.item()  # NOQA: item-sync, host-alloc") == {"item-sync", "host-alloc"}
    assert noqa("x.item()  # just a comment") is None


def test_noqa_suppresses_its_rules_only_and_columns_point_at_the_code(tmp_path):
    linted, errors = lint_paths([_project(tmp_path)])
    assert not errors
    found = _found(linted)
    assert ("item-sync", 6) not in found and ("item-sync", 7) not in found  # named; bare
    assert ("item-sync", 8) in found  # another tool's code suppresses nothing of ours
    assert {f.col for lt in linted for f in lt.findings if f.line == 8} == {5}


def test_pyproject_select_ignore_and_a_rules_option(tmp_path):
    d = _project(tmp_path, '[tool.trainprof]\nignore = ["item-sync"]\n[tool.trainprof.excessive-logging]\nevery = 50\n')
    linted, _ = lint_paths([d])
    rules = {r for r, _ in _found(linted)}
    assert "item-sync" not in rules and "excessive-logging" in rules
    log = next(f for lt in linted for f in lt.findings if f.rule == "excessive-logging")
    assert log.fix.params["every"] == 50 and "step % 50" in log.fix.summary
    # the command line's --select starts afresh (the file's ignore gives way, as in ruff); --ignore adds
    assert {r for r, _ in _found(lint_paths([d], select={"item-sync"})[0])} == {"item-sync"}
    assert "excessive-logging" not in {r for r, _ in _found(lint_paths([d], ignore={"excessive-logging"})[0])}


def test_the_nearest_pyproject_with_the_table_is_read(tmp_path):
    d = _project(tmp_path, '[tool.trainprof]\nselect = ["excessive-logging"]\n')
    (tmp_path / "pkg" / "pyproject.toml").write_text('[tool.black]\nline-length = 100\n')  # not ours: skipped
    assert {r for r, _ in _found(lint_paths([d])[0])} == {"excessive-logging"}
    assert load(None).rules() is None


def test_bad_configuration_is_one_line_naming_the_key(tmp_path):
    for toml, says in (('[tool.trainprof]\nignre = ["x"]\n', "unknown key 'ignre'"),
                       ('[tool.trainprof]\nselect = ["item-snyc"]\n', "unknown rule 'item-snyc'"),
                       ('[tool.trainprof.excessive-logging]\nevry = 5\n', "unknown option 'evry'"),
                       ('[tool.trainprof.excessive-logging]\nevery = 0\n', "every = 0"),
                       ('[tool.trainprof\n', "not valid TOML")):
        shutil.rmtree(tmp_path, ignore_errors=True)
        tmp_path.mkdir()
        d = _project(tmp_path, toml)
        r = run_cli("lint", d, cwd=str(tmp_path))
        assert r.returncode == 1, (toml, r.stdout, r.stderr)
        first = r.stderr.splitlines()[0]
        assert first.startswith("trainprof: error:") and says in first, (toml, r.stderr)
        assert "Traceback" not in r.stderr


def test_cli_statistics_output_format_and_columns(tmp_path):
    d = _project(tmp_path)
    r = run_cli("lint", d, "--statistics", "--fail-on", "never", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    counts = dict(line.split("\t")[::-1] for line in r.stdout.splitlines())
    assert counts["item-sync"] == "1" and all(v.isdigit() for v in counts.values())
    r = run_cli("lint", d, "--output-format", "json", "--fail-on", "never", cwd=str(tmp_path))
    rows = json.loads(r.stdout)
    assert {(x["rule"], x["line"], x["column"]) for x in rows} >= {("item-sync", 8, 5)}
    r = run_cli("lint", d, "--fail-on", "never", "--select", "item-sync", cwd=str(tmp_path))
    assert r.stdout.splitlines()[0] == (f"{os.path.join('pkg', 'train.py')}:8:5: item-sync [medium] "
                                        f"{r.stdout.splitlines()[0].split('[medium] ', 1)[1]}")


def test_noqa_in_the_script_leaves_a_measured_finding_out(tmp_path):
    run = tmp_path / "item_sync"
    shutil.copytree(os.path.join(SAMPLES, "item_sync"), run)
    script = run / "item_sync.py"
    lines = script.read_text().splitlines(keepends=True)
    assert ".item()" in lines[23]
    lines[23] = lines[23].rstrip("\n") + "  # noqa: item-sync\n"
    script.write_text("".join(lines))
    found = {(f.rule, f.line) for f in analyze(str(run), script=str(script)).findings}
    assert ("item-sync", 25) in found and ("item-sync", 24) not in found
