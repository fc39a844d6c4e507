"""Source roots (capture/roots.py) and the training loop's file (trace/line_times.loop_file): the
line recorder follows the project's code wherever it is, and the rules read the file the loop
runs in."""
import json
import os
import site
import sysconfig
from types import SimpleNamespace

import pytest
from conftest import SCRIPTS, run_cli

from trainprof.capture.roots import Roots, default_roots
from trainprof.trace.line_times import loop_file


def test_the_project_and_code_not_installed_are_the_users(tmp_path):
    r = Roots([str(tmp_path)], anywhere=True)
    assert r.is_user(os.path.join(str(tmp_path), "pkg", "loop.py"))
    assert r.is_user("/elsewhere/on/pythonpath/mylib.py")  # imported, not installed
    assert not r.is_user(os.path.join(sysconfig.get_paths()["stdlib"], "json", "__init__.py"))
    assert not r.is_user(os.path.join(site.getsitepackages()[0], "torch", "nn", "modules", "module.py"))
    # a virtual environment inside the project is installed code, not the user's
    assert not r.is_user(os.path.join(str(tmp_path), ".venv", "lib", "python3.11", "site-packages", "x.py"))
    assert not r.is_user("<frozen importlib._bootstrap>") and not r.is_user(os.path.join(str(tmp_path), "ext.so"))


def test_named_roots_narrow_to_themselves(tmp_path):
    cfg = default_roots(str(tmp_path / "train.py"), [str(tmp_path / "src")])
    r = Roots(cfg["roots"], cfg["anywhere"])
    assert r.is_user(str(tmp_path / "src" / "loop.py"))
    assert not r.is_user(str(tmp_path / "train.py")) and not r.is_user("/elsewhere/mylib.py")
    assert default_roots(str(tmp_path / "train.py"), None) == {"roots": [str(tmp_path)], "anywhere": True}


def _lt(spans, stacks, files):
    return SimpleNamespace(spans=spans, map=SimpleNamespace(stacks=stacks, files=files))


def test_the_loop_file_is_the_deepest_frame_that_stays():
    files = ["train.py", "mylib/loop.py", "model.py"]
    # <module> of train.py calls fit() in loop.py for the whole window; model.py's forward comes and goes
    stacks = [((0, 13), (1, 12)), ((0, 13), (1, 13), (2, 7)), ((0, 13), (1, 19))]
    spans = [(0, 10, 0), (10, 60, 1), (60, 100, 2)]
    assert loop_file(_lt(spans, stacks, files)) == "mylib/loop.py"
    # a loop in the script itself: only its own frame stays
    stacks = [((0, 20),), ((0, 21), (2, 7)), ((0, 22),)]
    assert loop_file(_lt(spans, stacks, files)) == "train.py"
    # a frame present for less than the share: not the loop's
    spans = [(0, 50, 0), (50, 100, 3)]
    stacks = [((0, 13), (1, 12)), ((0, 14),), None, ((0, 15),)]
    assert loop_file(_lt(spans, stacks, files)) == "train.py"


@pytest.mark.slow
def test_the_package_loop_trap_points_into_the_package(tmp_path):
    script = os.path.join(SCRIPTS, "package_loop", "train.py")
    dump = next(i for i, line in enumerate(open(os.path.join(SCRIPTS, "package_loop", "mylib", "loop.py")), 1)
                if "# DUMP" in line)
    out = tmp_path / "run"
    r = run_cli("analyze", "--run-dir", str(out), "-q", "--json", str(tmp_path / "a.json"), script, "--steps",
                "100000", cwd=os.path.join(SCRIPTS, "package_loop"))
    assert r.returncode == 0, r.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    top = a["findings"][0]
    assert (top["rule"], top["path"], top["line"]) == ("excessive-logging", os.path.join("mylib", "loop.py"), dump)
    assert top["speedup"] >= 4
    assert os.path.basename(a["script"]) == "train.py"  # the script that ran, still
    # --source-root names other folders: the package is not followed, nothing points into it
    other = tmp_path / "src"
    other.mkdir()
    r = run_cli("analyze", "--run-dir", str(tmp_path / "narrow"), "-q", "--source-root", str(other),
                "--json", str(tmp_path / "b.json"), script, "--steps", "100000", cwd=os.path.join(SCRIPTS, "package_loop"))
    assert r.returncode == 0, r.stderr
    files = json.loads((tmp_path / "narrow" / "lines.json").read_text())["files"]
    assert files == [os.path.realpath(script)]
    b = json.loads((tmp_path / "b.json").read_text())
    assert not any("mylib" in f["path"] for f in b["findings"])


@pytest.mark.slow
def test_a_loader_bound_run_names_the_datasets_lines(tmp_path):
    """The Dataset runs in a worker; the finding names its costly lines (made again in the
    training process after the trace), costliest first, with their time per batch."""
    script = os.path.join(SCRIPTS, "dataset_hot.py")
    hot = {i for i, line in enumerate(open(script), 1) if "# HOT" in line}
    r = run_cli("analyze", "--run-dir", str(tmp_path / "run"), "-q", "--json", str(tmp_path / "a.json"), script,
                env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    a = json.loads((tmp_path / "a.json").read_text())
    f = next(f for f in a["findings"] if f["rule"] == "dataloader-stall")
    lines = f["hot_lines"]
    assert lines and {h["line"] for h in lines[:2]} <= hot and lines[0]["path"] == "dataset_hot.py"
    assert [h["ms"] for h in lines] == sorted((h["ms"] for h in lines), reverse=True)
    batch = next(e["value"] for e in f["evidence"] if e["label"] == "batch time in a worker")
    assert sum(h["ms"] for h in lines) <= batch * 1.001  # shares of the measured batch, not the recorder's time
    assert f"costliest line is {os.path.relpath(script)}:{lines[0]['line']} " in f["message"]
