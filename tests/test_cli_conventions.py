"""Issue 22, items 1-7: the command line as users of ruff, pytest, py-spy and cProfile expect it --
one exit code per kind of failure (README's table, a test per row), mistyped options named with
a suggestion, everything after SCRIPT the script's, `apply` naming its run and picking one
finding by its number, terminal output fit for a pipe, the TensorBoard install hint."""
import io
import json
import os
import re
import shutil
import sys
import time

import pytest

from conftest import EXAMPLES, OURS, ROOT, SAMPLES, SCRIPTS, run_cli

from trainprof import errors


def _error(r, code, *needles):
    """The failure as the README promises it: the code, `trainprof: error:` first, no traceback
    of ours (a script's own traceback tail may follow its one line)."""
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    first = r.stderr.splitlines()[0]
    assert first.startswith("trainprof: error: "), r.stderr
    assert OURS not in r.stderr, r.stderr
    for n in needles:
        assert n in first, (n, first)
    return first


def _in_process(capsys, *args):
    """trainprof's main() in this process (to make it fail where no input can): (code, stderr)."""
    from trainprof.cli import main

    with pytest.raises(SystemExit) as e:
        main.main(args=list(args))
    return e.value.code, capsys.readouterr().err


# -- item 1 and the acceptance line: one code for every usage error ---------------------------

@pytest.mark.parametrize("args, named", [
    (["analyze", "missing.py"], "script not found: missing.py"),  # a missing script
    (["analyze", "--trails", "train.py"], "--trails"),  # an unknown option before the script
    (["analyz", "train.py"], "'analyz'"),  # an unknown command
    (["--bogus", "analyze"], "--bogus"),  # an unknown option of trainprof itself
    (["analyze", "--wait", "abc", "train.py"], "--wait"),  # a bad value
    (["analyze", "--wait", "0", "train.py"], "--wait"),  # out of range (was exit 2 from the runner)
    (["report"], "TARGET"),  # a missing argument
    (["lint", "--fail-on", "sometimes", "x.py"], "--fail-on"),
    (["rules", "no-such-rule"], "no-such-rule"),
    (["report", "--select", "no-such-rule", "x"], "no-such-rule"),
    (["apply", "--fix", "no-such-fix"], "no-such-fix"),
    (["verify", "missing.py", "other.py"], "script not found: missing.py"),
    (["analyze", "--nproc-per-node", "2", "torchrun", "train.py"], "give --nproc-per-node to torchrun"),
])
def test_usage_errors_exit_1_with_one_error_line(tmp_path, args, named):
    r = run_cli(*args, cwd=str(tmp_path))
    _error(r, errors.EXIT_USAGE, named)
    assert "Usage:" not in r.stderr  # click's block is not printed: one line, and where to look
    assert re.search(r"`trainprof( \w+)? --help` lists the (options|commands)", r.stderr), r.stderr
    assert not (tmp_path / "trainprof_runs").exists()  # nothing ran


def test_acceptance_the_three_failures_share_one_documented_code(tmp_path):
    codes = set()
    for args, named in ((["analyze", "nope.py"], "nope.py"), (["analyze", "--trails", "train.py"], "--trails"),
                        (["analyse", "train.py"], "'analyse'")):
        r = run_cli(*args, cwd=str(tmp_path))
        _error(r, r.returncode, named)
        codes.add(r.returncode)
    assert codes == {errors.EXIT_USAGE}
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert f"| {errors.EXIT_USAGE} | usage or input" in readme


# The README's exit-code table, row by row (the first column of its rows):
def _readme_codes() -> set[int]:
    text = open(os.path.join(ROOT, "README.md")).read()
    table = text[text.index("| exit | when |"):].split("\n\n")[0]
    return {int(m) for m in re.findall(r"^\s*\| (\d+) \|", table, re.M)}


ROWS = {0: "done", 1: "usage or input", 2: "the script's run", 3: "trace or run directory", 70: "a bug", 130: "Ctrl-C"}


def test_readme_table_is_the_codes_tested_here():
    assert _readme_codes() == set(ROWS)
    assert {errors.EXIT_USAGE, errors.EXIT_RUN, errors.EXIT_TRACE, errors.EXIT_BUG, errors.EXIT_INTERRUPTED} | {0} \
        == set(ROWS)


def test_row_0_done_and_help(tmp_path):
    assert run_cli("rules").returncode == 0
    bare = run_cli()  # no command: the help, not an error
    assert bare.returncode == 0 and "Commands:" in bare.stdout and "analyze" in bare.stdout
    h = run_cli("--help")
    assert h.returncode == 0 and "Exit codes: 0 done; 1 usage or input" in " ".join(h.stdout.split())


def test_row_1_input_refused(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("for x in range(3):\n    print(x\n")
    _error(run_cli("apply", "--static", str(bad), "--fix", "item-sync"), 1, "does not parse")
    _error(run_cli("lint", str(bad)), 1, "cannot parse")
    _error(run_cli("tensorboard", str(tmp_path)), 1, "no runs here")  # was 2
    good = tmp_path / "ok.py"
    good.write_text("import torch\nx = torch.zeros(3)\n")
    out = tmp_path / "folder"
    out.mkdir()
    _error(run_cli("lint", str(good), "-o", str(out)), 1, "a directory")  # an output refused


def test_row_2_the_scripts_run_failed(tmp_path):
    r = run_cli("analyze", "--run-dir", str(tmp_path / "run"), "--settle", "0", os.path.join(SCRIPTS, "raises_at_import.py"))
    _error(r, errors.EXIT_RUN, "raised RuntimeError")


def test_row_3_a_trace_that_cannot_be_read(tmp_path):
    bad = tmp_path / "cut.pt.trace.json.gz"
    d = os.path.join(SAMPLES, "host_alloc")
    bad.write_bytes(open(os.path.join(d, next(f for f in os.listdir(d) if f.endswith(".gz"))), "rb").read()[:5000])
    _error(run_cli("report", str(bad)), errors.EXIT_TRACE, "truncated or corrupt gzip")


def test_row_70_a_bug_of_ours_is_one_line(monkeypatch, capsys):
    def boom():
        raise RuntimeError("a bug")

    monkeypatch.setattr("trainprof.rule.all_rules", boom)
    monkeypatch.delenv("TRAINPROF_DEBUG", raising=False)
    code, err = _in_process(capsys, "rules")
    assert code == errors.EXIT_BUG and err.startswith("trainprof: internal error: RuntimeError: a bug")
    assert "Traceback" not in err


def test_row_130_ctrl_c(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr("trainprof.rule.all_rules", interrupted)
    code, err = _in_process(capsys, "rules")
    assert code == errors.EXIT_INTERRUPTED and "trainprof: interrupted" in err


# -- item 2: a mistyped option is named, with the closest one --------------------------------

def test_a_mistyped_option_is_named_and_the_closest_suggested(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("raise SystemExit('must not run')\n")
    first = _error(run_cli("analyze", "--trails", str(script), cwd=str(tmp_path)), 1)
    assert first == "trainprof: error: unknown option --trails for `trainprof analyze` (did you mean --trials?)"
    first = _error(run_cli("analyze", "--run_dir", "x", str(script), cwd=str(tmp_path)), 1)
    assert "unknown option --run_dir" in first and "did you mean --run-dir?" in first
    # one of another command: said so
    first = _error(run_cli("report", "--trials", "x"), 1)
    assert "--trials is an option of `trainprof analyze`" in first
    first = _error(run_cli("analyz", "x.py"), 1)
    assert "unknown command 'analyz' (did you mean analyze?)" in first


# -- item 3: everything after SCRIPT is the script's, one rule, in --help ----------------------

def test_the_rule_for_the_scripts_arguments_is_in_help():
    for cmd, after in (("analyze", "SCRIPT"), ("verify", "PATCHED")):
        h = " ".join(run_cli(cmd, "--help").stdout.split())
        assert f"everything after {after} is the script" in h, h
        assert f"trainprof's options go before {'SCRIPT' if cmd == 'analyze' else 'ORIGINAL'}" in h, h


def test_arguments_after_the_script_are_its_own_and_ours_get_a_note(tmp_path):
    """argv_flags.py checks it gets exactly these flags (--timeout is also trainprof's); piped,
    no status line is written."""
    args = ["--flag", "value", "--timeout", "7", "--verbose"]
    out = tmp_path / "run"
    r = run_cli("analyze", "--run-dir", str(out), "--settle", "0", "--wait", "2", "--warmup", "1", "--active", "1",
                "-q", os.path.join(SCRIPTS, "argv_flags.py"), *args)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "run.json").read_text())["argv"] == args
    assert r.stderr.splitlines() == ["trainprof: note: --timeout after SCRIPT goes to the script, as everything "
                                     "after SCRIPT does; trainprof's own options go before SCRIPT"]


# -- items 4 and 5: apply names its run; SCRIPT picks that script's; --fix N picks one finding -----

def _analysed(tmp_path, name, logdir="trainprof_runs", stamp=None):
    """A saved GPU run of examples/NAME.py, re-analysed with the script copied to tmp_path (as if
    it had run there), in tmp_path/LOGDIR; stamp: its analysis' time."""
    script = tmp_path / f"{name}.py"
    if not script.exists():
        shutil.copyfile(os.path.join(EXAMPLES, f"{name}.py"), script)
    run = tmp_path / logdir / f"{name}-run"
    shutil.copytree(os.path.join(SAMPLES, name), run)
    for junk in ("analysis.json", "report.html", f"{name}.py"):
        (run / junk).unlink(missing_ok=True)
    r = run_cli("report", str(run), "--script", str(script), cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    if stamp is not None:
        os.utime(run / "analysis.json", (stamp, stamp))
    return run, script, r.stdout


def test_apply_names_the_run_and_apply_script_picks_its_own(tmp_path):
    now = time.time()
    _, _, _ = _analysed(tmp_path, "item_sync", stamp=now - 100)
    _analysed(tmp_path, "host_alloc", stamp=now)  # the newest run, of another script
    r = run_cli("apply", "--fix", "item-sync", "--dry-run", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"run {os.path.join('trainprof_runs', 'host_alloc-run')} of host_alloc.py, analysed ")
    assert first.endswith("(the newest run under trainprof_runs/)")
    r = run_cli("apply", "item_sync.py", "--fix", "item-sync", "--dry-run", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith(f"run {os.path.join('trainprof_runs', 'item_sync-run')} of item_sync.py")
    assert first.endswith("(the newest run of item_sync.py under trainprof_runs/)")
    assert "+    losses.append(loss.detach())" in r.stdout
    other = tmp_path / "other.py"
    other.write_text("print(1)\n")
    _error(run_cli("apply", "other.py", "--fix", "item-sync", cwd=str(tmp_path)), 1,
           "no analysed run of other.py under trainprof_runs/")


def test_fix_by_number_is_the_reports_number_and_picks_one_finding(tmp_path):
    run, script, report = _analysed(tmp_path, "item_sync")
    findings = json.loads((run / "analysis.json").read_text())["findings"]
    # the numbers shown: terminal ("N. rule path:line") and HTML (the finding's header)
    shown = re.findall(r"^(\d+)\. (\S+) (\S+):(\d+)$", report, re.M)
    assert [(int(n), rule, int(line)) for n, rule, _, line in shown] == \
        [(k, f["rule"], f["line"]) for k, f in enumerate(findings, 1)]
    page = (run / "report.html").read_text()
    for k, f in enumerate(findings, 1):
        assert f'<section class="finding" id="finding-{k}">' in page and f"<strong>{k}. {f['rule']}</strong>" in page
    n = next(k for k, f in enumerate(findings, 1) if f["rule"] == "item-sync")
    later = next(k for k, f in enumerate(findings, 1) if f["rule"] == "item-sync" and k != n)
    assert f"trainprof apply {run} --fix {n}" in page  # the page's command: this finding alone

    before = script.read_text()
    d = run_cli("apply", str(run), "--fix", str(later), "--dry-run", cwd=str(tmp_path))
    assert d.returncode == 0, d.stderr
    line = findings[later - 1]["line"]
    assert f"#{later:<3} item-sync at item_sync.py:{line}: fix item-sync (safe)" in d.stdout.splitlines()
    assert f"#{n} " not in d.stdout  # the other item-sync finding is left
    changed = [ln[1:] for ln in d.stdout.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    src = before.splitlines()
    assert src[line - 1] in changed and src[findings[n - 1]["line"] - 1] not in changed, d.stdout
    # the same by rule@line, and by rule@path:line
    for spec in (f"item-sync@{line}", f"item-sync@item_sync.py:{line}"):
        same = run_cli("apply", str(run), "--fix", spec, "--dry-run", cwd=str(tmp_path))
        assert same.returncode == 0 and same.stdout.splitlines()[1:] == d.stdout.splitlines()[1:], same.stderr
    assert script.read_text() == before  # --dry-run wrote nothing
    w = run_cli("apply", str(run), "--fix", str(later), cwd=str(tmp_path))
    assert w.returncode == 0 and "wrote item_sync.py" in w.stdout, w.stderr
    now = script.read_text().splitlines()
    assert now[line - 1] != src[line - 1] and now[findings[n - 1]["line"] - 1] == src[findings[n - 1]["line"] - 1]


def test_fix_by_number_refusals(tmp_path):
    run, _, _ = _analysed(tmp_path, "item_sync")
    findings = json.loads((run / "analysis.json").read_text())["findings"]
    advice = next(k for k, f in enumerate(findings, 1) if not (f.get("fix") or {}).get("safety"))
    _error(run_cli("apply", str(run), "--fix", str(advice), cwd=str(tmp_path)), 1, "advice only")
    _error(run_cli("apply", str(run), "--fix", "99", cwd=str(tmp_path)), 1, f"findings 1 to {len(findings)}")
    _error(run_cli("apply", str(run), "--fix", "item-sync@999", cwd=str(tmp_path)), 1,
           "no item-sync finding at line 999", "#")
    _error(run_cli("apply", "--static", "x.py", "--fix", "2", cwd=str(tmp_path)), 1, "not with --static")


# -- item 6: terminal output --------------------------------------------------------------------

def test_piped_output_is_not_wrapped(tmp_path):
    _, _, report = _analysed(tmp_path, "host_alloc")
    a = json.loads((tmp_path / "trainprof_runs" / "host_alloc-run" / "analysis.json").read_text())
    long = [f["message"] for f in a["findings"] if len(f["message"]) > 100]
    assert long, "a message longer than a terminal line"
    lines = report.splitlines()
    for m in long:  # each on a line of its own, whole
        assert f"   {m}" in lines, m
    assert max(len(ln) for ln in lines) > 120
    assert "\x1b[" not in report  # no colours in a pipe


def test_numbers_are_written_out():
    from trainprof.finding import fmt_num
    from trainprof.report.terminal import plain

    assert [fmt_num(v) for v in (1205.3, 38.84, 0.00235, 1.23e-5, 0.0, 153.4, 12345)] == \
        ["1,205", "38.8", "0.00235", "0.0000123", "0", "153", "12,345"]
    assert plain("waits 1.2e+03 ms per step, 3e+02 ms here; `Adam(lr=1e-05)`") == \
        "waits 1,200 ms per step, 300 ms here; `Adam(lr=1e-05)`"


def test_the_terminal_report_has_no_exponents(tmp_path):
    from rich.console import Console

    from trainprof.engine import analyze
    from trainprof.report import terminal
    from trainprof.report.prepare import prepare

    buf = io.StringIO()
    terminal.render(prepare(analyze(os.path.join(SAMPLES, "dataloader_stall"))), Console(file=buf, width=100))
    assert not re.search(r"\de[+-]\d", buf.getvalue()), buf.getvalue()


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_status_line_on_a_terminal_only():
    from rich.console import Console

    from trainprof.report.progress import Progress, status

    assert status("wait", 37, 0, 12.4) == "timing unprofiled steps: step 37, looking for steady state  [12 s]"
    assert status("active", 2, 3, 75) == "recording: step 2 of 3  [1 min 15 s]"
    tty = _Tty()
    with Progress(console=Console(file=tty, force_terminal=True, width=120)) as p:
        p.update("active", 2, 3)
        time.sleep(0.35)
    assert "recording: step 2 of 3" in tty.getvalue()
    piped = io.StringIO()
    with Progress(console=Console(file=piped, force_terminal=True, width=120)) as p:  # FORCE_COLOR does not count
        p.update("active", 2, 3)
        time.sleep(0.2)
    assert piped.getvalue() == ""


# -- item 7: the TensorBoard install hint fits how trainprof was installed ------------------

class _Dist:
    def __init__(self, direct_url, location):
        self._direct, self._where = direct_url, location

    def read_text(self, name):
        return json.dumps(self._direct) if name == "direct_url.json" and self._direct is not None else None

    def locate_file(self, name):
        return os.path.join(self._where, name)


def test_install_hint_for_each_way_of_installing(monkeypatch):
    from trainprof.report import extras

    here = extras._HERE
    monkeypatch.setattr(extras, "_pip", lambda: "pip install")
    cases = [
        (_Dist({"url": f"file://{here}", "dir_info": {"editable": True}}, "/elsewhere"),
         f"pip install -e '{here}[tensorboard]'"),  # a clone, `pip install -e .`
        (_Dist(None, here), "pip install 'trainprof[tensorboard]'"),  # from a package index
        (_Dist({"url": "file:///other/clone", "dir_info": {"editable": True}}, "/other"),  # another copy's metadata
         "pip install torch-tb-profiler==0.4.3 'pandas>=1.5'"),
        (None, "pip install torch-tb-profiler==0.4.3 'pandas>=1.5'"),  # a checkout on the path, not installed
    ]
    for dist, hint in cases:
        monkeypatch.setattr(extras, "_dist", lambda d=dist: d)
        assert extras.install_hint() == hint


def test_install_hint_names_the_extra_pyproject_declares():
    tomllib = pytest.importorskip("tomllib")
    from trainprof.report.extras import TENSORBOARD

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extra = tomllib.load(f)["project"]["optional-dependencies"]["tensorboard"]
    assert tuple(extra) == TENSORBOARD


def test_missing_plugin_says_what_to_install(monkeypatch, capsys):
    from trainprof.report import extras

    monkeypatch.setitem(sys.modules, "torch_tb_profiler", None)  # as if not installed
    code, err = _in_process(capsys, "tensorboard", os.path.join(SAMPLES, "item_sync"))
    assert code == 1 and "plugin is not installed" in err and extras.install_hint() in err
