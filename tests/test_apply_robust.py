"""`trainprof apply` keeps the user's code whole in every failure: a file that no longer parses,
a form no codemod rewrites, a file changed since the analysis, a read-only file or folder, a
crash in the middle of the write, backups already there. Each case: one line on stderr
(`trainprof: error: ...`), the file byte for byte as it was, nothing stray beside it.

The runs are the saved H100 run of examples/item_sync.py, analysed again (`trainprof report`,
nothing runs) against a copy of its script in tmp_path/src.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import EXAMPLES, ROOT, SAMPLES, run_cli

pytestmark = pytest.mark.slow  # each failure of apply made for real

PATCHED = "losses.append(loss.detach())"  # what the item-sync fix writes at line 24


def _analysed(tmp_path, edit=None):
    """(run dir, script): the saved run re-analysed against tmp_path/src/item_sync.py (edited by edit)."""
    run = tmp_path / "run"
    shutil.copytree(os.path.join(SAMPLES, "item_sync"), run)
    for junk in ("analysis.json", "report.html", "item_sync.py"):  # the copy beside the run is not the one to fix
        (run / junk).unlink(missing_ok=True)
    src = tmp_path / "src"
    src.mkdir()
    script = src / "item_sync.py"
    text = open(os.path.join(EXAMPLES, "item_sync.py")).read()
    script.write_text(edit(text) if edit else text)
    meta = json.loads((run / "run.json").read_text())
    meta["script"] = str(script)
    meta["script_sha256"] = hashlib.sha256(script.read_bytes()).hexdigest()  # as if it ran with the edit
    (run / "run.json").write_text(json.dumps(meta))
    r = run_cli("report", str(run), "--script", str(script), "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    return run, script


def _files(d) -> dict:
    """Every entry under d: name -> bytes (or the target of a link), to compare before and after."""
    out = {}
    for p in sorted(d.rglob("*")):
        out[str(p.relative_to(d))] = ("link", os.readlink(p)) if p.is_symlink() else p.read_bytes() if p.is_file() else "dir"
    return out


def _one_line_error(r, *needles):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)  # apply refuses: an input error
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainprof: error: "), r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _item_sync_findings(run) -> list[int]:
    a = json.loads((run / "analysis.json").read_text())
    return [f["line"] for f in a["findings"] if f["rule"] == "item-sync"]


# (1) a file that does not parse

def test_syntax_error_after_the_analysis_is_refused_by_its_hash(tmp_path):
    run, script = _analysed(tmp_path)
    script.write_text(script.read_text().replace("for step in range(args.steps):", "for step in range(args.steps)"))
    before = _files(script.parent)
    for how in (["--fix", "item-sync"], ["--all-safe"], ["--fix", "item-sync", "--dry-run"]):
        r = run_cli("apply", str(run), *how, cwd=str(tmp_path))
        _one_line_error(r, "item_sync.py changed since the analysis")
        assert _files(script.parent) == before  # byte for byte, no backup, no temporary file
    assert not (run / "applied.json").exists()


def test_static_file_that_never_parsed_or_is_not_utf8(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bad = src / "bad.py"
    bad.write_text(open(os.path.join(EXAMPLES, "item_sync.py")).read().replace(
        "losses.append(loss.item())", "losses.append(loss.item()"))
    latin = src / "latin.py"  # valid Python (a coding cookie), not UTF-8: apply reads UTF-8 only
    latin.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\nimport torch\nx = torch.ones(2).item()\n")
    before = _files(src)
    for how in (["--fix", "item-sync"], ["--all-safe"], ["--all-safe", "--dry-run"]):
        r = run_cli("apply", "--static", str(bad), *how, cwd=str(tmp_path))
        _one_line_error(r, "bad.py:", "does not parse")
        r = run_cli("apply", "--static", str(latin), *how, cwd=str(tmp_path))
        _one_line_error(r, "latin.py: not UTF-8 text")
    assert _files(src) == before


# (2) a form the codemod cannot rewrite

def test_a_form_the_codemod_cannot_rewrite_is_said_and_left_byte_identical(tmp_path):
    # the lists are read through methods at the end: item-sync cannot tell what a device tensor would do there
    run, script = _analysed(tmp_path, lambda t: t.replace(
        'print(f"mean loss {sum(losses) / len(losses):.4f} acc {sum(accs) / len(accs):.3f}")',
        "print(losses.index(min(losses)), accs.count(1.0))"))
    assert _item_sync_findings(run) == [24, 25]
    before = _files(script.parent)
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "left   item-sync" in r.stdout and "used through a method: left alone" in r.stdout
    assert "nothing to change" in r.stdout and "wrote" not in r.stdout
    assert _files(script.parent) == before and not (run / "applied.json").exists()

    # --static: a value read every step (its host copy drives control flow)
    every = tmp_path / "src" / "every.py"
    shutil.copyfile(os.path.join(ROOT, "tests", "codemods", "item-sync", "read_every_step.in.py"), every)
    before = _files(every.parent)
    r = run_cli("apply", "--static", str(every), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "is read every step" in r.stdout and "nothing to change" in r.stdout
    assert _files(every.parent) == before


# (3) a file changed since the analysis

def test_a_file_changed_since_the_analysis_is_refused_even_by_one_byte(tmp_path):
    run, script = _analysed(tmp_path)
    with open(script, "a") as f:
        f.write("\n")  # one newline: the lines found may not have moved, but apply cannot know
    before = _files(script.parent)
    for how in (["--fix", "item-sync"], ["--fix", "item-sync", "--dry-run"]):
        _one_line_error(run_cli("apply", str(run), *how, cwd=str(tmp_path)), "changed since the analysis")
    assert _files(script.parent) == before and not (run / "applied.json").exists()


# (4) a read-only file, a read-only folder

def test_a_read_only_file_is_refused(tmp_path):
    run, script = _analysed(tmp_path)
    script.chmod(0o444)  # apply's rename would replace it (the folder allows that, and root may anyway)
    before = _files(script.parent)
    _one_line_error(run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path)),
                    "item_sync.py is read-only: nothing written")
    _one_line_error(run_cli("apply", "--static", str(script), "--fix", "item-sync", cwd=str(tmp_path)),
                    "is read-only")
    assert _files(script.parent) == before and (script.stat().st_mode & 0o777) == 0o444
    assert not (run / "applied.json").exists()
    script.chmod(0o644)  # nothing was left behind that stops the next apply
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0 and PATCHED in script.read_text(), r.stderr


def _unprivileged(probe_dir) -> list[str] | None:
    """A command prefix under which a read-only folder is read-only (root ignores the mode:
    drop its override capabilities), or None where that cannot be arranged."""
    prefix = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if not setpriv:
            return None
        caps = "-dac_override,-dac_read_search,-fowner"
        prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
    probe = subprocess.run(prefix + [sys.executable, "-c", f"open({str(probe_dir / 'probe')!r}, 'w')"],
                           capture_output=True)
    return prefix if probe.returncode != 0 else None


def test_a_read_only_folder_where_no_temporary_file_can_be_made(tmp_path):
    run, script = _analysed(tmp_path)
    src = script.parent
    before = _files(src)
    src.chmod(0o555)
    try:
        prefix = _unprivileged(src)
        if prefix is None:
            pytest.skip("cannot make a folder read-only for this user here (root without setpriv)")
        env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
        r = subprocess.run(prefix + [sys.executable, "-m", "trainprof.cli", "apply", str(run), "--fix", "item-sync"],
                           capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=300)
        _one_line_error(r, "cannot write the backup", "Permission denied", "item_sync.py left as it was")
        assert _files(src) == before and not (run / "applied.json").exists()
    finally:
        src.chmod(0o755)
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0 and PATCHED in script.read_text(), r.stderr


# (5) a crash in the middle of the write

CRASH = r"""
import errno, os, sys
how, target = sys.argv[1], os.path.abspath(sys.argv[2])
write, replace = os.write, os.replace

def crashing_write(fd, data):
    if how == "write" and b"%s" in bytes(data):  # the patched file: half of it, then the process dies
        write(fd, bytes(data)[: len(data) // 2])
        os._exit(9)
    return write(fd, data)

def crashing_replace(src, dst, *a, **k):
    if os.path.basename(dst) == os.path.basename(target):  # named relative to its folder's descriptor
        if how == "replace":  # written in full, dies before the rename
            os._exit(9)
        if how == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return replace(src, dst, *a, **k)

os.write, os.replace = crashing_write, crashing_replace
from trainprof.cli import main
sys.argv = ["trainprof", *sys.argv[3:]]
main()
""" % PATCHED.encode().decode()


@pytest.mark.parametrize("how", ["write", "replace", "enospc"])
def test_a_crash_mid_write_leaves_the_original_and_a_whole_backup(tmp_path, how):
    run, script = _analysed(tmp_path)
    src = script.parent
    original = script.read_bytes()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, "-c", CRASH, how, str(script), "apply", str(run), "--fix", "item-sync"],
                       capture_output=True, text=True, cwd=str(tmp_path), env=env, timeout=300)
    assert script.read_bytes() == original  # never half of a file
    left = {k: v for k, v in _files(src).items() if k != "item_sync.py"}
    if how == "enospc":  # an error, not a crash: said in one line, and nothing left beside the file
        _one_line_error(r, "cannot write", "No space left on device", "left as it was")
        assert left == {}
    else:
        assert r.returncode == 9, (r.returncode, r.stderr)  # it died where this test made it die
        assert left.pop("item_sync.py.trainprof.bak") == original  # the backup is whole
        if how == "write":
            assert left == {}  # the half-written file never had a name (O_TMPFILE)
        else:  # killed between writing the temporary file in full and renaming it: it stays, whole
            assert all(k.startswith("item_sync.py.tmp") for k in left), left
    assert not (run / "applied.json").exists()

    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))  # the next apply works
    assert r.returncode == 0, r.stderr
    patched = script.read_bytes()
    assert PATCHED.encode() in patched and json.loads((run / "applied.json").read_text())
    baks = sorted(src.glob("item_sync.py.trainprof.bak*"))
    assert baks and all(b.read_bytes() == original for b in baks)
    assert all(v == patched for k, v in left.items())  # a leftover temporary file is the whole new file
    again = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert again.returncode == 0 and "already applied" in again.stdout and script.read_bytes() == patched


# (6) backups already there

def test_existing_backups_are_never_overwritten(tmp_path):
    run, script = _analysed(tmp_path)
    src = script.parent
    original = script.read_bytes()
    earlier = b"# the user's original from an earlier apply\n"
    (src / "item_sync.py.trainprof.bak").write_bytes(earlier)
    os.symlink("nowhere", src / "item_sync.py.trainprof.bak2")  # a dangling link named like a backup

    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0 and "backup: src/item_sync.py.trainprof.bak3" in r.stdout, r.stdout + r.stderr
    once = script.read_bytes()
    assert (src / "item_sync.py.trainprof.bak3").read_bytes() == original

    # a second fix on the patched file backs up the patched file, beside the original's backup
    r = run_cli("apply", "--static", str(script), "--fix", "autocast", cwd=str(tmp_path))
    assert r.returncode == 0 and "backup: src/item_sync.py.trainprof.bak4" in r.stdout, r.stdout + r.stderr
    assert (src / "item_sync.py.trainprof.bak4").read_bytes() == once
    assert (src / "item_sync.py.trainprof.bak3").read_bytes() == original
    assert (src / "item_sync.py.trainprof.bak").read_bytes() == earlier
    assert os.readlink(src / "item_sync.py.trainprof.bak2") == "nowhere"
    twice = script.read_bytes()
    assert b"torch.autocast" in twice and PATCHED.encode() in twice

    # the analysis is now stale for this file: refused, nothing written
    _one_line_error(run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path)), "changed since the analysis")
    assert script.read_bytes() == twice and len(list(src.glob("*.trainprof.bak*"))) == 4


def test_a_byte_order_mark_and_crlf_lines_print_back(tmp_path):
    """Untouched bytes stay as they were (libcst drops a leading BOM: apply puts it back)."""
    text = open(os.path.join(ROOT, "tests", "codemods", "item-sync", "accumulate.in.py")).read()
    want = open(os.path.join(ROOT, "tests", "codemods", "item-sync", "accumulate.out.py")).read()
    for name, head, nl in (("bom.py", b"\xef\xbb\xbf", "\n"), ("crlf.py", b"", "\r\n")):
        p = tmp_path / name
        original = head + text.replace("\n", nl).encode()
        p.write_bytes(original)
        r = run_cli("apply", "--static", str(p), "--fix", "item-sync", cwd=str(tmp_path))
        assert r.returncode == 0, r.stderr
        assert p.read_bytes() == head + want.replace("\n", nl).encode()
        assert (tmp_path / f"{name}.trainprof.bak").read_bytes() == original
