"""Safe fixes keep results bit-identical: each safe codemod, applied (--static) to every
example it rewrites, gives the same losses over 20 seeded steps on the CPU."""
import glob
import os
import shutil

import pytest

from conftest import EXAMPLES, run_cli
from trainprof.fix.apply import all_codemods, fix_text

pytestmark = pytest.mark.slow  # each safe fix run seeded, before and after

# zero-grad: no example has `set_to_none=False`; tests/test_parity_zero_grad.py checks it
SAFE = [fid for fid, (_, c) in all_codemods().items() if c.safety == "safe" and fid != "zero-grad"]
SCRIPTS = sorted(p for p in glob.glob(os.path.join(EXAMPLES, "*.py")) if not p.endswith(".fixed.py"))


def _rewrites(fid):
    _, c = all_codemods()[fid]
    return [p for p in SCRIPTS if fix_text(p, open(p).read(), [c], None).changed]


@pytest.mark.parametrize("fid", SAFE)
def test_safe_fix_keeps_losses_bit_identical(fid, tmp_path):
    hits = _rewrites(fid)
    assert hits, f"no example has a form {fid} rewrites"
    for src in hits:
        name = os.path.basename(src)
        orig, patched = tmp_path / f"orig_{name}", tmp_path / name
        shutil.copyfile(src, orig)
        shutil.copyfile(src, patched)
        r = run_cli("apply", "--static", str(patched), "--fix", fid)
        assert r.returncode == 0 and "wrote" in r.stdout, r.stdout + r.stderr
        r = run_cli("verify", "--rounds", "0", "--parity-steps", "20", str(orig), str(patched), "--steps", "25")
        assert r.returncode == 0, r.stderr
        assert "losses bit-identical over the first 20 steps" in r.stdout, f"{fid} on {name}: {r.stdout}"


def test_parity_covers_the_main_safe_fixes():
    assert {"item-sync", "blocking-h2d", "host-alloc"} <= set(SAFE)
    assert _rewrites("item-sync")
