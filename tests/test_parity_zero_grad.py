"""zero-grad is a safe fix: a seeded CPU script and its zero-grad-fixed version print
bit-identical losses (repr of each float) over 20 steps."""
import os
import subprocess
import sys

import pytest

from conftest import SCRIPTS
from trainprof.fix.apply import all_codemods, fix_text

pytestmark = pytest.mark.slow  # the fix run seeded, before and after


def _losses(path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    r = subprocess.run([sys.executable, str(path), "--steps", "20"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_zero_grad_fix_keeps_losses_bit_identical(tmp_path):
    src = os.path.join(SCRIPTS, "zero_grad_false.py")
    fixed = fix_text(src, open(src).read(), [all_codemods()["zero-grad"][1]], None)
    assert fixed.changed and "    opt.zero_grad()\n" in fixed.after and "opt.zero_grad(set_to_none" not in fixed.after
    patched = tmp_path / "zero_grad_fixed.py"
    patched.write_text(fixed.after)
    before, after = _losses(src), _losses(patched)
    assert len(before) == 20 and len(set(before)) > 1  # the model trains: the losses move
    assert before == after
