"""A run directory is passed around (a colleague's run, a CI artifact, sample_traces/): opening
one with `trainprof report`, `apply` or `tensorboard` never writes outside it, reads a private
file into a report, hangs or exhausts memory. Each test makes one attack of Issue 20 (numbered
as there) and checks what trainprof does instead.
"""
import os
import shutil

import pytest

from conftest import ROOT, SAMPLES, run_cli


def _run(tmp_path, name="item_sync"):
    """A copy of a saved GPU run, with no analysis or page yet."""
    run = tmp_path / "run"
    shutil.copytree(os.path.join(SAMPLES, name), run)
    for junk in ("analysis.json", "report.html"):
        (run / junk).unlink(missing_ok=True)
    return run


def _error_line(r, code, *needles):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert lines and lines[0].startswith("trainprof: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# (1) symlinks followed on write

@pytest.mark.parametrize("planted", ["report.html", "analysis.json"])
def test_a_linked_output_in_the_run_directory_is_not_followed(tmp_path, planted):
    run = _run(tmp_path)
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA the-owner\n")
    (run / planted).symlink_to(victim)
    r = run_cli("report", str(run), "-q", cwd=str(tmp_path))
    _error_line(r, 1, planted, "symbolic link", "not written")
    assert victim.read_text() == "ssh-ed25519 AAAA the-owner\n"
    assert (run / planted).is_symlink() and os.readlink(run / planted) == str(victim)
    assert not [p for p in os.listdir(run) if ".tmp" in p]  # no temporary file left beside it


def test_a_fifo_or_folder_where_an_output_goes_is_refused(tmp_path):
    run = _run(tmp_path)
    os.mkfifo(run / "report.html")
    r = run_cli("report", str(run), "-q", cwd=str(tmp_path), timeout=60)
    _error_line(r, 1, "report.html", "a FIFO", "not written")
    (run / "report.html").unlink()
    (run / "report.html").mkdir()
    _error_line(run_cli("report", str(run), "-q", cwd=str(tmp_path), timeout=60), 1, "a directory")


def test_the_writer_refuses_links_even_dangling_ones(tmp_path):
    from trainprof.files import RefusedPath, write_atomic

    real = tmp_path / "real.py"
    real.write_text("a = 1\n")
    for target in (real, tmp_path / "nowhere"):
        link = tmp_path / "link.py"
        link.symlink_to(target)
        with pytest.raises(RefusedPath, match="symbolic link"):
            write_atomic(str(link), b"a = 2\n")
        assert link.is_symlink() and real.read_text() == "a = 1\n" and not (tmp_path / "nowhere").exists()
        link.unlink()
    write_atomic(str(real), b"a = 3\n", mode=0o640)  # a regular file is replaced, its mode as asked
    assert real.read_text() == "a = 3\n" and real.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real.py"]


def test_lint_output_through_a_link_is_refused(tmp_path):
    script = tmp_path / "t.py"
    script.write_text("x = 1\n")
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "out.txt").symlink_to(victim)
    r = run_cli("lint", str(script), "-o", str(tmp_path / "out.txt"), cwd=str(tmp_path))
    _error_line(r, 1, "symbolic link")
    assert victim.read_text() == "keep\n"


def test_apply_writes_a_linked_source_at_its_target_and_keeps_the_link(tmp_path):
    """The writer never follows a link; apply resolves a user's linked source itself (as editors
    write through one) and writes the real file, with its backup beside it."""
    src = os.path.join(os.path.dirname(__file__), "codemods", "item-sync", "accumulate.in.py")
    real = tmp_path / "real.py"
    shutil.copy(src, real)
    (tmp_path / "link.py").symlink_to("real.py")
    r = run_cli("apply", "--static", str(tmp_path / "link.py"), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    want = open(src.replace(".in.py", ".out.py")).read()
    assert (tmp_path / "link.py").is_symlink() and real.read_text() == want
    assert (tmp_path / "real.py.trainprof.bak").read_text() == open(src).read()


# (5) non-regular files: checked after resolving links, on the opened file, before reading

def test_a_fifo_named_as_the_trace_fails_within_seconds(tmp_path):
    run = _run(tmp_path)
    trace = next(run.glob("*.pt.trace.json.gz"))
    trace.unlink()
    os.mkfifo(trace)  # nothing ever writes to it: a read would wait forever
    r = run_cli("report", str(run), "-q", cwd=str(tmp_path), timeout=30)
    _error_line(r, 3, trace.name, "a FIFO, not a regular file")


@pytest.mark.parametrize("name", ["run.json", "lines.json"])
def test_a_fifo_as_the_run_json_or_lines_json_does_not_hang(tmp_path, name):
    run = _run(tmp_path)
    (run / name).unlink()
    os.mkfifo(run / name)
    r = run_cli("report", str(run), "-q", cwd=str(tmp_path), timeout=30)
    if name == "run.json":
        _error_line(r, 3, "run.json", "a FIFO")
    else:  # a damaged lines.json costs only the line attribution, as documented
        assert r.returncode == 0 and (run / "report.html").is_file(), r.stderr


def test_lint_of_a_link_to_dev_zero_is_refused_not_read(tmp_path):
    (tmp_path / "zero.py").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.py")
    (tmp_path / "ok.py").write_text("x = 1\n")
    r = run_cli("lint", str(tmp_path), cwd=str(tmp_path), timeout=30)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "zero.py: a character device, not a regular file" in r.stderr
    assert "pipe.py: a FIFO, not a regular file" in r.stderr
    assert "in 1 file(s)" in r.stdout  # the regular one is linted
    r = run_cli("lint", str(tmp_path / "zero.py"), cwd=str(tmp_path), timeout=30)
    assert r.returncode == 1 and "a character device, not a regular file" in r.stderr


def test_a_script_that_is_a_fifo_is_refused(tmp_path):
    run = _run(tmp_path)
    os.mkfifo(tmp_path / "train.py")
    r = run_cli("report", str(run), "--script", str(tmp_path / "train.py"), "-q", cwd=str(tmp_path), timeout=30)
    _error_line(r, 1, "a FIFO, not a regular file")


# (4) decompression and reading bounded, whatever the content

MEASURED = """
import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(r.stderr)
print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def _report_measured(run, tmp_path):
    """(exit code, stderr, peak RSS in MiB) of `trainprof report run`."""
    import subprocess
    import sys

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-m", "trainprof.cli", "report", str(run), "-q"],
                       capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=300)
    code, mib = map(int, r.stdout.split())
    return code, r.stderr, mib


def _bomb(path, head: bytes, unit: bytes, n: int, tail: bytes):
    """A .json.gz of head + unit * n + tail, of gzip members: a few MB that inflate to n * len(unit)."""
    import gzip

    one = gzip.compress(unit, 9)
    with open(path, "wb") as f:
        f.write(gzip.compress(head))
        for _ in range(n):
            f.write(one)
        f.write(gzip.compress(tail))


BLANKS = b" " * (16 << 20)
BOMBS = {  # the content -> what the one-line error says
    "blanks": (b"", BLANKS, 192, b"", "a gzip bomb?"),  # 3 GB of blanks, nothing else
    "blanks_between_events": (b'{"traceEvents": [{"ph": "X", "ts": 1, "dur": 1},', BLANKS, 192,
                              b'{"ph": "X", "ts": 2, "dur": 1}]}', "longer than 64 MiB"),
    "giant_string": (b'{"traceEvents": [{"ph": "X", "name": "', b"a" * (16 << 20), 192, b'"}]}', "longer than 64 MiB"),
    "empty_events": (b'{"traceEvents": [', b"{}," * (1 << 22), 48, b"{}]}", "by the million"),
    "deep_nesting": (b'{"traceEvents": [{"ph": "X", "args": {"a": ', b"[" * 100_000 + b"]" * 100_000, 1, b"}}]}",
                     "nested too deeply"),
}


@pytest.mark.parametrize("content", list(BOMBS))
def test_a_trace_that_would_exhaust_memory_is_refused_within_bounds(tmp_path, content):
    head, unit, n, tail, said = BOMBS[content]
    run = _run(tmp_path)
    trace = next(run.glob("*.pt.trace.json.gz"))
    _bomb(trace, head, unit, n, tail)
    assert trace.stat().st_size < 8 << 20
    code, err, mib = _report_measured(run, tmp_path)
    assert code == 3 and err.startswith("trainprof: error: ") and said in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert mib < 1536, mib  # the bound the issue sets: 3 GB of blanks once took 5.8 GB


def test_a_run_json_past_the_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from trainprof.capture import rundir
    from trainprof.errors import TraceError

    run = _run(tmp_path)
    monkeypatch.setattr(rundir, "JSON_MAX", 1000)  # the limit made small: the real one is 256 MiB
    (run / "run.json").write_bytes(b" " * 1001 + b"{}")
    with pytest.raises(TraceError, match="over the 0 MiB|MB, over"):
        rundir.read_run(str(run))
    (run / "run.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    monkeypatch.setattr(rundir, "JSON_MAX", 256 << 20)
    with pytest.raises(TraceError, match="nested too deeply"):
        rundir.read_run(str(run))


# (10) malformed analysis.json and applied.json: input errors naming the field, not exit 70

def _edited_analysis(tmp_path, edit):
    import json

    run = tmp_path / "run"
    shutil.copytree(os.path.join(SAMPLES, "item_sync"), run)  # analysed; its script beside it (root ".")
    a = json.loads((run / "analysis.json").read_text())
    k = next(i for i, f in enumerate(a["findings"]) if f["rule"] == "item-sync")
    a["findings"].insert(0, a["findings"].pop(k))
    edit(a)
    (run / "analysis.json").write_text(json.dumps(a))
    return run


def _set(path, value):
    def edit(a):
        *up, last = path
        for k in up:
            a = a[k]
        if value is KeyError:
            del a[last]
        else:
            a[last] = value
    return edit


MALFORMED = {  # an edit of analysis.json -> the field the error names
    "findings_not_a_list": (_set(["findings"], "x"), "$.findings"),
    "line_not_a_number": (_set(["findings", 0, "line"], "abc"), "$.findings[0].line"),
    "line_huge": (_set(["findings", 0, "line"], 10 ** 30), "$.findings[0].line"),
    "path_missing": (_set(["findings", 0, "path"], KeyError), "path"),
    "rule_a_list": (_set(["findings", 0, "rule"], []), "$.findings[0].rule"),
    "fix_a_string": (_set(["findings", 0, "fix"], "item-sync"), "$.findings[0].fix"),
    "params_a_list": (_set(["findings", 0, "fix"], {"id": "item-sync", "params": [1]}), "$.findings[0].fix.params"),
    "files_a_list": (_set(["files"], []), "$.files"),
    "hash_a_number": (_set(["files", "item_sync.py"], 5), "$.files[...]"),
    "root_a_number": (_set(["root"], 5), "$.root"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_analysis_is_an_input_error_naming_the_field(tmp_path, case):
    edit, field = MALFORMED[case]
    run = _edited_analysis(tmp_path, edit)
    before = (run / "item_sync.py").read_bytes()
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    _error_line(r, 3, "analysis.json", field)
    assert len(r.stderr.strip().splitlines()) == 1
    assert (run / "item_sync.py").read_bytes() == before


@pytest.mark.parametrize("text", ["[]", '{"item_sync.py": 5}', "{", "null"])
def test_a_malformed_applied_json_is_an_input_error(tmp_path, text):
    run = _edited_analysis(tmp_path, lambda a: None)
    (run / "applied.json").write_text(text)
    before = (run / "item_sync.py").read_bytes()
    _error_line(run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path)), 3, "applied.json")
    assert (run / "item_sync.py").read_bytes() == before


def test_a_nul_byte_in_a_finding_path_is_refused(tmp_path):
    run = _edited_analysis(tmp_path, _set(["findings", 0, "path"], "item_sync.py\0x"))
    _error_line(run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path)), 1, "NUL byte")


# (9) fix parameters checked; what a codemod makes must compile before it is written

def _logging_run(tmp_path, every):
    import json

    run = tmp_path / "run"
    shutil.copytree(os.path.join(SAMPLES, "excessive_logging"), run)
    a = json.loads((run / "analysis.json").read_text())
    for f in a["findings"]:
        if f["rule"] == "excessive-logging":
            f["fix"]["params"]["every"] = every
    (run / "analysis.json").write_text(json.dumps(a))
    return run


@pytest.mark.parametrize("every", [0, -5, float("nan"), 2.5, "x", 10 ** 12, None])
def test_a_bad_every_is_refused_not_written(tmp_path, every):
    run = _logging_run(tmp_path, every)
    before = (run / "excessive_logging.py").read_bytes()
    r = run_cli("apply", str(run), "--fix", "excessive-logging", cwd=str(tmp_path))
    if every is None:  # no period given: the codemod's own default
        assert r.returncode == 0 and "if step % 100 == 0:" in (run / "excessive_logging.py").read_text(), r.stderr
        return
    _error_line(r, 3, "$.findings[0].fix.params.every")
    assert (run / "excessive_logging.py").read_bytes() == before


def test_an_unknown_fix_parameter_is_refused(tmp_path):
    import json

    run = _logging_run(tmp_path, 10)
    a = json.loads((run / "analysis.json").read_text())
    a["findings"][0]["fix"]["params"]["code"] = "__import__('os').system('id')"
    (run / "analysis.json").write_text(json.dumps(a))
    _error_line(run_cli("apply", str(run), "--fix", "excessive-logging", cwd=str(tmp_path)), 3,
                "unknown field `code`")


def test_code_that_would_not_compile_is_never_written(tmp_path):
    """Whatever a codemod makes (here one that writes a module-level `return`, which libcst
    prints but Python refuses), apply compiles it first."""
    import libcst as cst

    from trainprof.fix.apply import FixError, fix_text
    from trainprof.fix.codemod import Codemod

    def transform(site):
        return site.module.with_changes(body=[*site.module.body, cst.parse_statement("return 1\n")])

    bad = Codemod("bad", "safe", "adds a return", "none", transform)
    with pytest.raises(FixError, match=r"t.py:2: the fixed code would not compile \('return' outside function\)"):
        fix_text("t.py", "x = 1\n", [bad], None)


# (6) deep nesting: measured from tokens before any parser sees it

DEEP = {
    "plus": "x = " + " + ".join(["1"] * 30_000) + "\n",  # once: exit 70, RecursionError
    "not": "x = " + "not " * 20_000 + "y\n",  # once: MemoryError
    "parens": "x = " + "(" * 10_000 + "1" + ")" * 10_000 + "\n",  # once: libcst's parser segfaulted (exit 139)
    "calls": "x = f" + "()" * 5_000 + "\n",
}


def test_deeply_nested_sources_are_an_input_error(tmp_path):
    for name, text in DEEP.items():
        (tmp_path / f"{name}.py").write_text(text)
    r = run_cli("lint", str(tmp_path), cwd=str(tmp_path), timeout=120)
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == len(DEEP) and "Traceback" not in r.stderr, r.stderr
    for name in DEEP:
        assert any(ln.startswith("trainprof: error: ") and f"/{name}.py:1: cannot parse: nested too deeply" in ln
                   for ln in lines), \
            (name, lines)


def test_a_deep_script_in_report_and_apply_is_one_line(tmp_path):
    (tmp_path / "train.py").write_text(DEEP["parens"])
    run = _run(tmp_path)
    r = run_cli("report", str(run), "--script", str(tmp_path / "train.py"), "-q", cwd=str(tmp_path), timeout=120)
    _error_line(r, 1, "train.py:1: cannot parse: nested too deeply")
    r = run_cli("apply", "--static", str(tmp_path / "train.py"), "--fix", "item-sync", cwd=str(tmp_path), timeout=120)
    _error_line(r, 1, "nested too deeply")
    assert (tmp_path / "train.py").read_text() == DEEP["parens"]


def test_a_parser_crash_costs_a_one_line_error_not_the_process(monkeypatch):
    """With the depth limit lifted, the 10,000 brackets reach libcst's parser, which crashes
    (SIGSEGV) -- in a forked child: this process gets the error and goes on."""
    from trainprof.source import depth
    from trainprof.source.index import ParseError, parse

    monkeypatch.setattr(depth, "MAX_NESTING", 10 ** 9)
    with pytest.raises(ParseError, match=r"the parser crashed on it \(SIG"):
        parse("t.py", DEEP["parens"])
    assert parse("t.py", "x = " + "(" * 60 + "1" + ")" * 60 + "\n") is not None  # deep, within bounds: parsed


# (3) reports read sources only as .py files under the run's folder or --script's

def _run_naming(tmp_path, script_path):
    import json

    run = _run(tmp_path)
    (run / "item_sync.py").unlink()  # the copy a sample carries beside its run
    meta = json.loads((run / "run.json").read_text())
    meta["script"] = str(script_path)
    (run / "run.json").write_text(json.dumps(meta))
    return run


def test_a_script_that_run_json_names_elsewhere_is_not_read_into_the_report(tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    lines = open(os.path.join(SAMPLES, "item_sync", "item_sync.py")).read().splitlines(True)
    lines[23] = lines[23].rstrip("\n") + "  # SECRET-TOKEN-4711\n"  # at a finding's line: its excerpt
    secret = private / "item_sync.py"
    secret.write_text("".join(lines))
    run = _run_naming(tmp_path, secret)
    r = run_cli("report", str(run), "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    page, doc = (run / "report.html").read_text(), (run / "analysis.json").read_text()
    assert "SECRET-TOKEN" not in page and "SECRET-TOKEN" not in doc
    assert f"the script {secret} was not read (outside the run directory and the --script folder)" in doc
    assert "was not read" in page and "--script PATH" in page
    # the user names it: then it is read (and the same run shows what it hid)
    r = run_cli("report", str(run), "--script", str(secret), "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "SECRET-TOKEN-4711" in (run / "report.html").read_text()


@pytest.mark.parametrize("where", ["outside", "inside"])
def test_a_script_that_is_not_a_py_file_is_never_read(tmp_path, where):
    """A private key beside the run, or a text file inside it: not a .py file, never read."""
    secret = tmp_path / "id_rsa" if where == "outside" else tmp_path / "run" / "notes.txt"
    run = _run_naming(tmp_path, secret)
    secret.write_text("x = 'SECRET-KEY-0815'\n" + open(os.path.join(SAMPLES, "item_sync", "item_sync.py")).read())
    r = run_cli("report", str(run), "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "SECRET-KEY" not in (run / "report.html").read_text()
    assert "(not a .py file)" in (run / "analysis.json").read_text()


# (2) apply writes only under the analysed script's folder, each file with a matching sha256

def _victim(tmp_path):
    """tmp_path/victim/item_sync.py: someone's file, its text and its hash known (it is public)."""
    import hashlib

    d = tmp_path / "victim"
    d.mkdir()
    shutil.copy(os.path.join(SAMPLES, "item_sync", "item_sync.py"), d)
    return d / "item_sync.py", hashlib.sha256((d / "item_sync.py").read_bytes()).hexdigest()


def test_apply_without_a_project_root_matches_nothing_by_suffix(tmp_path):
    """The old schema: absolute paths, no hash, matched by suffix against whatever is here."""
    victim, _ = _victim(tmp_path)
    before = victim.read_bytes()

    def edit(a):
        del a["root"]
        a["files"] = {}
        for f in a["findings"]:
            f["path"] = str(victim)
    run = _edited_analysis(tmp_path, edit)
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    _error_line(r, 1, "names no project root")
    assert victim.read_bytes() == before


@pytest.mark.parametrize("files", ["none", "hashed"])
def test_apply_refuses_a_project_the_analysis_alone_points_at(tmp_path, files):
    victim, sha = _victim(tmp_path)
    before = victim.read_bytes()

    def edit(a):
        a["root"] = "../victim"
        a["files"] = {"item_sync.py": sha} if files == "hashed" else {}
    run = _edited_analysis(tmp_path, edit)
    elsewhere = tmp_path / "downloads"
    elsewhere.mkdir()
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(elsewhere))
    _error_line(r, 1, f"the analysed project {victim.parent} is outside the run directory and the current folder")
    assert victim.read_bytes() == before
    # stated by the user (--root), the project is theirs: then only a recorded, matching hash lets it be written
    r = run_cli("apply", str(run), "--fix", "item-sync", "--root", str(victim.parent), cwd=str(elsewhere))
    if files == "none":
        _error_line(r, 1, "item_sync.py: the analysis recorded no sha256 for it: not rewritten")
        assert victim.read_bytes() == before
    else:
        assert r.returncode == 0 and b"losses.append(loss.detach())" in victim.read_bytes(), r.stderr


@pytest.mark.parametrize("how", ["dotdot", "link"])
def test_apply_refuses_a_file_outside_the_script_folder_by_name(tmp_path, how):
    victim, sha = _victim(tmp_path)
    before = victim.read_bytes()

    def edit(a):
        name = "../victim/item_sync.py" if how == "dotdot" else "linked.py"
        a["files"][name] = sha
        a["findings"][0]["path"] = name
    run = _edited_analysis(tmp_path, edit)
    (run / "linked.py").symlink_to(victim)
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    _error_line(r, 1, "outside the analysed project", "not rewritten")
    assert victim.read_bytes() == before


# (8) an editor's save between apply's read and its rename is never lost

EDITOR = r"""
import os, sys
path, text = sys.argv[1], sys.argv[2]
link = os.link

def saving_link(src, dst, *a, **k):  # apply's new file is complete; an editor saves just now
    if isinstance(dst, str) and dst.startswith(os.path.basename(path) + ".tmp"):
        with open(path, "w") as f:
            f.write(text)
    return link(src, dst, *a, **k)

os.link = saving_link
from trainprof.cli import main
sys.argv = ["trainprof", *sys.argv[3:]]
main()
"""


def test_an_editor_saving_while_apply_writes_keeps_its_change(tmp_path):
    import subprocess
    import sys

    run = _edited_analysis(tmp_path, lambda a: None)
    script = run / "item_sync.py"
    saved = script.read_text() + "# the editor's change\n"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, "-c", EDITOR, str(script), saved, "apply", str(run), "--fix", "item-sync"],
                       capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=120)
    _error_line(r, 1, "item_sync.py was saved by another program while apply wrote it", "nothing written")
    assert script.read_text() == saved
    assert not list(run.glob("item_sync.py.*")) and not (run / "applied.json").exists()  # no backup, no temp


def test_concurrent_applies_write_the_file_once(tmp_path):
    """Four applies of one analysis at once: one writes, each other one waits for its lock and
    then finds the file changed (or already applied); one backup, the fix made once."""
    import subprocess
    import sys

    run = _edited_analysis(tmp_path, lambda a: None)
    script = run / "item_sync.py"
    original = script.read_bytes()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    procs = [subprocess.Popen([sys.executable, "-m", "trainprof.cli", "apply", str(run), "--fix", "item-sync"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path), env=env)
             for _ in range(4)]
    outs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    wrote = [o for o in outs if o[0] == 0 and "wrote " in o[1]]
    assert len(wrote) == 1, outs
    for code, out, err in outs:
        assert (code, out, err) in wrote or "already applied" in out or "changed while fixing it" in err, (code, out, err)
    assert script.read_bytes().count(b"losses.append(loss.detach())") == 1
    assert [p.read_bytes() for p in run.glob("item_sync.py.trainprof.bak*")] == [original]


# (11) fixes chain: a second apply of the same analysis makes the fixes the first did not

def test_a_second_fix_applies_to_the_patched_file(tmp_path):
    import json

    together = _edited_analysis(tmp_path / "one", lambda a: None)
    assert run_cli("apply", str(together), "--fix", "item-sync,autocast", cwd=str(tmp_path)).returncode == 0
    run = _edited_analysis(tmp_path / "two", lambda a: None)
    script = run / "item_sync.py"
    original = script.read_bytes()
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0 and "wrote " in r.stdout, r.stderr
    r = run_cli("apply", str(run), "--fix", "autocast", cwd=str(tmp_path))
    assert r.returncode == 0 and "fixed  autocast" in r.stdout and "already applied" not in r.stdout, r.stdout + r.stderr
    assert script.read_bytes() == (together / "item_sync.py").read_bytes()  # as both at once
    entry = json.loads((run / "applied.json").read_text())[str(script)]
    assert entry["fixes"] == ["autocast", "item-sync"]
    assert open(entry["backup"], "rb").read() == original  # the file as analysed, for the next one
    r = run_cli("apply", str(run), "--fix", "autocast,item-sync", cwd=str(tmp_path))
    assert r.returncode == 0 and r.stdout.count("already applied") == 2 and "nothing to change" in r.stdout


def test_a_chained_fix_leaves_a_line_an_earlier_fix_changed(tmp_path):
    """excessive-logging and item-sync found at the same line (29): the logging guard rewrites
    it, so item-sync, applied after, leaves it and says why."""
    run = tmp_path / "run"
    shutil.copytree(os.path.join(SAMPLES, "excessive_logging"), run)
    assert run_cli("apply", str(run), "--fix", "excessive-logging", cwd=str(tmp_path)).returncode == 0
    guarded = (run / "excessive_logging.py").read_text()
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "excessive_logging.py:29: an earlier fix changed this line (as analysed): left alone" in r.stdout, r.stdout


def test_a_chain_without_the_original_is_refused(tmp_path):
    run = _edited_analysis(tmp_path, lambda a: None)
    assert run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path)).returncode == 0
    (run / "item_sync.py.trainprof.bak").unlink()
    r = run_cli("apply", str(run), "--fix", "autocast", cwd=str(tmp_path))
    _error_line(r, 1, "its backup of the file as analysed is gone or changed")


# (7) escaping children: a daemon the script starts is ended with the run

DAEMON = '''
import os, sys, time
import torch

if os.fork() == 0:  # the classic daemon: fork, setsid, fork again; the middle one exits
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(sys.argv[1] + ".tmp", sys.argv[1])
        while True:
            time.sleep(1)
    os._exit(0)
model = torch.nn.Linear(16, 16)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for step in range(40):
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    model(torch.randn(4, 16)).pow(2).mean().backward()
    opt.step()
    opt.zero_grad()
'''


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("full_run", [False, True])
def test_a_daemon_the_script_starts_does_not_outlive_analyze(tmp_path, full_run):
    import time

    script = tmp_path / "daemon.py"
    script.write_text(DAEMON)
    pidfile = tmp_path / "daemon.pid"
    r = run_cli("analyze", "--run-dir", str(tmp_path / "run"), "--wait", "3", "--settle", "0",
                "--warmup", "1", "--active", "2", "-q", *(["--full-run"] if full_run else []), str(script), str(pidfile),
                timeout=300)
    assert r.returncode == 0, r.stderr
    pid = int(pidfile.read_text())
    end = time.monotonic() + 10  # a bound on the wait, not a timing: it is gone when analyze returns
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _alive(pid)


def test_tensorboard_stage_folder_is_reused_not_left_per_launch(tmp_path, monkeypatch):
    from trainprof.report.tensorboard import logdir_for

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    run = _run(tmp_path)
    first, second = logdir_for(str(run)), logdir_for(str(run))
    assert first == second and first.startswith(str(tmp_path / "cache" / "trainprof"))
    assert os.listdir(first) == ["run"] and os.path.realpath(os.path.join(first, "run")) == str(run)
    assert logdir_for(str(_run(tmp_path / "other"))) != first  # one per run directory


def test_a_daemon_the_script_starts_does_not_outlive_verify(tmp_path):
    """verify (and trials, through the same runner) times the script in processes of its own:
    a daemon it starts is ended with each run too."""
    import time

    script = tmp_path / "daemon.py"
    script.write_text(DAEMON)
    pidfile = tmp_path / "daemon.pid"
    r = run_cli("verify", "--skip", "2", "--steps", "3", "--rounds", "1", "--parity-steps", "0",
                str(script), str(script), str(pidfile), cwd=str(tmp_path), timeout=300)
    assert r.returncode == 0, r.stderr
    pid = int(pidfile.read_text())
    end = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    assert not _alive(pid)


# (12) a trace of many small events: the loader's memory stays under the JSON's size

LOAD = "import sys; from trainprof.trace import load_trace; load_trace(sys.argv[1])"


def _load_measured(path, tmp_path) -> int:
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", MEASURED, sys.executable, "-c", LOAD, str(path)], capture_output=True,
                       text=True, cwd=str(tmp_path), timeout=300)
    code, mib = map(int, r.stdout.split())
    assert code == 0, r.stderr
    return mib


@pytest.mark.slow
def test_many_small_events_load_in_less_memory_than_their_json(tmp_path):
    # 10M such events (917 MB) once peaked at 2.97 GB: the pieces' columns and the trace's, whole
    # at once, in int64. The interpreter's own memory (a tiny trace's load) is set aside.
    import importlib.util

    spec = importlib.util.spec_from_file_location("many_events", os.path.join(ROOT, "bench", "many_events.py"))
    many = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(many)
    big, tiny = tmp_path / "big.json", tmp_path / "tiny.json"
    many.main(str(big), 4_000_000)
    many.main(str(tiny), 100)
    json_mib = big.stat().st_size >> 20
    used = _load_measured(big, tmp_path) - _load_measured(tiny, tmp_path)
    assert used < json_mib, (used, json_mib)
