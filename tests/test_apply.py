"""`trainprof apply` and `verify` for real: from a saved H100 analysis, and --static on CPU."""
import json
import os
import shutil

import pytest

from conftest import EXAMPLES, SAMPLES, run_cli

CODEMODS = os.path.join(os.path.dirname(__file__), "codemods")


def _run_with_script(tmp_path, name="item_sync"):
    """A copy of a saved run whose script lives in tmp_path (as if it had run there)."""
    run = tmp_path / "run"
    shutil.copytree(os.path.join(SAMPLES, name), run)
    for junk in ("analysis.json", "report.html"):
        if (run / junk).exists():
            (run / junk).unlink()
    script = tmp_path / f"{name}.py"
    shutil.copyfile(os.path.join(EXAMPLES, f"{name}.py"), script)
    meta = json.loads((run / "run.json").read_text())
    meta["script"] = str(script)
    (run / "run.json").write_text(json.dumps(meta))
    (run / name).with_suffix(".py").unlink(missing_ok=True)  # the copy beside the run: not the one to fix
    r = run_cli("report", str(run), "--script", str(script), "-q", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    return run, script


def test_apply_from_analysis_backup_diff_and_second_apply(tmp_path):
    run, script = _run_with_script(tmp_path)
    before = script.read_text()
    dry = run_cli("apply", str(run), "--fix", "item-sync", "--dry-run", cwd=str(tmp_path))
    assert dry.returncode == 0, dry.stderr
    assert "# item-sync (safe)" in dry.stdout and "+    losses.append(loss.detach())" in dry.stdout
    assert script.read_text() == before  # --dry-run writes nothing

    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    after = script.read_text()
    assert "losses.append(loss.detach())" in after and "accs.append((out.argmax(1) == y).float().mean().detach())" in after
    bak = tmp_path / "item_sync.py.trainprof.bak"
    assert bak.read_text() == before and f"backup: {bak.name}" in r.stdout
    assert json.loads((run / "applied.json").read_text())  # what it wrote, by hash
    # everything but the two rewritten lines and the final print is byte for byte the same
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(changed) == 3

    again = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert again.returncode == 0 and "nothing to change" in again.stdout and "already applied" in again.stdout
    assert script.read_text() == after and not (tmp_path / "item_sync.py.trainprof.bak2").exists()


def test_apply_refuses_a_file_changed_since_the_analysis(tmp_path):
    run, script = _run_with_script(tmp_path)
    edited = script.read_text().replace("losses, accs = [], []", "losses, accs = [], []  # edited")
    script.write_text(edited)
    r = run_cli("apply", str(run), "--fix", "item-sync", cwd=str(tmp_path))
    assert r.returncode == 1 and "changed since the analysis" in r.stderr
    assert "Traceback" not in r.stderr and script.read_text() == edited
    assert not list(tmp_path.glob("*.trainprof.bak*"))


def test_apply_static_bad_input_one_line_errors(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("for x in range(3):\n    print(x\n")
    r = run_cli("apply", "--static", str(bad), "--fix", "item-sync")
    assert r.returncode == 1 and "does not parse" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("apply", "--static", str(bad), "--fix", "no-such-fix")
    assert r.returncode == 1 and "no fix 'no-such-fix'" in r.stderr
    r = run_cli("apply", "--static", str(bad))
    assert r.returncode == 1 and "--all-safe" in r.stderr
    r = run_cli("apply", str(tmp_path / "nowhere"), "--fix", "item-sync")
    assert r.returncode == 1 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_verify_item_sync_fix_on_cpu_is_bit_identical(tmp_path):
    """The fixture pair runs: timed in interleaved rounds, and the seeded losses match bit for bit."""
    a = os.path.join(CODEMODS, "item-sync", "accumulate.in.py")
    b = os.path.join(CODEMODS, "item-sync", "accumulate.out.py")
    r = run_cli("verify", "--skip", "2", "--steps", "5", "--rounds", "2", "--parity-steps", "15", a, b)
    assert r.returncode == 0, r.stderr
    assert "measured speedup:" in r.stdout and "2 rounds" in r.stdout
    assert "losses bit-identical over the first 15 steps" in r.stdout


@pytest.mark.slow
def test_verify_reports_losses_that_differ_and_scripts_that_fail(tmp_path):
    a = os.path.join(CODEMODS, "item-sync", "accumulate.in.py")
    b = tmp_path / "lr.py"
    b.write_text(open(a).read().replace("lr=0.1", "lr=0.2"))
    r = run_cli("verify", "--skip", "2", "--steps", "3", "--rounds", "1", "--parity-steps", "5", a, str(b))
    assert r.returncode == 0, r.stderr
    assert "losses differ from step 2 of 5" in r.stdout  # the first loss is before any update
    crash = tmp_path / "crash.py"
    crash.write_text("raise ValueError('boom')\n")
    r = run_cli("verify", "--skip", "2", "--steps", "3", "--rounds", "1", a, str(crash))
    assert r.returncode == 2 and "crash.py failed" in r.stderr and "ValueError: boom" in r.stderr


def test_apply_estimate_covers_only_the_fixes_written():
    """A rule with two fixes (unfused-optimizer: fused-optimizer, zero-grad): writing one must
    not be credited with the other's estimate (seen: 'estimated 2.04x' for a zero_grad change)."""
    from trainprof.fix.verify import estimate_for

    run = os.path.join(SAMPLES, "launch_bound_adam")
    a = json.loads(open(os.path.join(run, "analysis.json")).read())
    fused = next(f for f in a["findings"] if f["rule"] == "unfused-optimizer")
    assert fused["fix"]["id"] == "fused-optimizer"
    assert estimate_for(run, {"zero-grad"}).startswith("none: no measured finding is fixed by zero-grad")
    got = estimate_for(run, {"fused-optimizer"})
    assert got.startswith(f"{fused['speedup']:.3g}x for unfused-optimizer:{fused['line']}"), got
