"""steptime's fixed window in seconds (TRAINPROF_MIN_S, TRAINPROF_SKIP_S) and whole periods
(TRAINPROF_MULTIPLE): the ground truth of bench/corpus.py times a fast fix over as long a window
as its slow original."""
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOOP = """
    import time
    import torch
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=0.1)
    for step in range(100000):
        time.sleep(0.01)
        opt.step()
"""


def _record(tmp_path, **env):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(LOOP))
    e = dict(os.environ, PYTHONPATH=ROOT, **{f"TRAINPROF_{k.upper()}": str(v) for k, v in env.items()})
    p = subprocess.run([sys.executable, "-m", "trainprof.capture.steptime", str(script)], cwd=tmp_path, env=e,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_the_window_counts_steps_without_seconds(tmp_path):
    r = _record(tmp_path, skip=2, steps=3)
    assert (r["skip"], r["steps"]) == (2, 3)
    assert r["step_ms"] >= 10


def test_the_window_lasts_min_s_and_whole_periods(tmp_path):
    r = _record(tmp_path, skip=2, steps=3, min_s=0.3, skip_s=1.0, multiple=4)
    # steps of 10 ms or more (a sleep): the timed window lasted 0.3 s, in whole periods of 4
    assert r["steps"] * r["step_ms"] >= 300 and r["steps"] % 4 == 0 and r["steps"] > 3
    assert r["skip"] > 2  # two steps cannot have lasted the second skipped
    assert r["step_ms"] >= 10
