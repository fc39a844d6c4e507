"""Knobs a trial sets at run time (capture/steptime.py) and which findings get them (fix/trials.py)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from trainprof.fix.trials import candidates

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _analysis(script, *findings):
    return {"script": str(script), "findings": [dict(f, path=os.path.basename(str(script))) for f in findings]}


def _finding(rule, line, saving, fix_id=None):
    return {"rule": rule, "line": line, "saving_ms": saving, "fix": {"id": fix_id} if fix_id else None}


def test_a_launch_bound_gpu_run_tries_torch_compile_once(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("x = 1\n")
    a = _analysis(script, _finding("launch-bound", 3, 9.0), _finding("gpu-idle", 4, 8.0), _finding("item-sync", 2, 1.0))
    got = candidates(str(tmp_path), a, str(script), script.read_text(), cores=8, cuda=True)
    assert [(c.key["rule"], c.fix_id) for c in got] == [("launch-bound", "compile")]
    (v,) = got[0].variants
    assert v.knobs == {"compile": True} and v.optional
    # without a GPU there is no launch-bound step to compile away
    assert candidates(str(tmp_path), a, str(script), script.read_text(), cores=8, cuda=False) == []


def test_an_unfused_optimizer_built_out_of_reach_of_the_codemod_tries_the_knob(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("opt = make_optimizer(model)\n")  # no literal call the codemod could patch
    a = _analysis(script, _finding("unfused-optimizer", 1, 5.0, "fused-optimizer"))
    got = candidates(str(tmp_path), a, str(script), script.read_text(), cores=8, cuda=True)
    assert [(c.fix_id, c.variants[0].knobs) for c in got] == [("fused", {"fused": True})]


def _steptime(tmp_path, body, knobs, skip=2, steps=3):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(body))
    env = dict(os.environ, TRAINPROF_SKIP=str(skip), TRAINPROF_STEPS=str(steps), TRAINPROF_KNOBS=json.dumps(knobs),
               PYTHONPATH=ROOT)
    p = subprocess.run([sys.executable, "-m", "trainprof.capture.steptime", str(script)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


MODEL = """
    import torch
    from torch import nn
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    crit = nn.MSELoss()  # called too, holds no parameters: not the model
    opt = torch.optim.{opt}(model.parameters(), lr=1e-3)
    x, y = torch.randn(4, 8), torch.randn(4, 1)
    for step in range(100):
        loss = crit(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step == 1:
            print("compiled:", model._compiled_call_impl is not None, "fused:", opt.defaults.get("fused"), flush=True)
"""


def test_the_fused_knob_leaves_optimizers_of_cpu_parameters_as_built(tmp_path):
    out = _steptime(tmp_path, MODEL.format(opt="AdamW"), {"fused": True})
    assert "compiled: False fused: None" in out or "compiled: False fused: False" in out
    assert json.loads(out.strip().splitlines()[-1])["step_ms"] > 0


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="fused optimizers need a GPU here")
def test_the_fused_knob_fuses_a_gpu_optimizer(tmp_path):
    body = MODEL.format(opt="Adam").replace("model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))",
                                            "model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)).cuda()")
    body = body.replace("torch.randn(4, 8), torch.randn(4, 1)", "torch.randn(4, 8).cuda(), torch.randn(4, 1).cuda()")
    assert "fused: True" in _steptime(tmp_path, body, {"fused": True})


@pytest.mark.slow
def test_the_compile_knob_compiles_the_model_in_place(tmp_path):
    out = _steptime(tmp_path, MODEL.format(opt="SGD"), {"compile": True})
    assert "compiled: True" in out
    assert json.loads(out.strip().splitlines()[-1])["step_ms"] > 0


def test_a_throttle_is_timed_over_whole_periods_against_the_original_timed_alike():
    from trainprof.fix.trials import Variant, _speedups, _whole_periods

    env = {"TRAINPROF_SKIP": 5, "TRAINPROF_STEPS": 10, "TRAINPROF_SETTLE": 15.0}
    whole = _whole_periods(env, 500)
    # the search would leave the periodic logging out as a spike: a fixed window of whole periods
    assert whole["TRAINPROF_SETTLE"] == 0 and whole["TRAINPROF_MULTIPLE"] == 500 and whole["TRAINPROF_MIN_S"] > 0
    origs = {"search": [20.0, 20.0], "whole": [30.0, 30.0]}  # the original's flushes, in whole windows only
    throttle = Variant({"every": 500}, "x", "guard", ms=[3.0, 3.0])
    knob = Variant({"num_workers": 4}, None, "knob", ms=[10.0, 10.0])
    assert _speedups(origs, throttle) == [10.0, 10.0]  # against the original's whole periods
    assert _speedups(origs, knob) == [2.0, 2.0]  # against its search


def _run_dir(tmp_path, findings, files=None):
    import hashlib

    script = tmp_path / "train.py"
    script.write_text("x = 1\n")
    sha = hashlib.sha256(script.read_bytes()).hexdigest()
    d = tmp_path / "run"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"script": str(script), "script_sha256": sha, "argv": []}))
    (d / "analysis.json").write_text(json.dumps({"script": "train.py", "script_sha256": sha, "files": files or {},
                                                 "root": "..", "findings": findings}))
    return d, sha


def test_trials_of_an_analysis_with_nothing_to_try_say_so(tmp_path):
    from trainprof.fix.trials import run_trials

    d, sha = _run_dir(tmp_path, [])
    out = run_trials(str(d))
    assert out["findings"] == [] and "no finding" in out["note"] and out["script_sha256"] == sha
    assert json.loads((d / "trials.json").read_text())["note"] == out["note"]


def test_trials_find_the_script_when_only_other_files_have_findings(tmp_path):
    """A loop in a package beside the script: the analysis names only that file's sha256."""
    from trainprof.fix.trials import TrialError, run_trials

    (tmp_path / "mylib").mkdir()
    (tmp_path / "mylib" / "loop.py").write_text("y = 2\n")
    f = {"rule": "item-sync", "path": "mylib/loop.py", "line": 1, "saving_ms": 1.0, "fix": {"id": "item-sync"}}
    d, _ = _run_dir(tmp_path, [f], {"mylib/loop.py": "0" * 64})
    out = run_trials(str(d))  # nothing in the script itself to patch: no error, a note
    assert out["findings"] == [] and "codemod" in out["note"]
    # the script edited since the analysis: refused, not tried
    (tmp_path / "train.py").write_text("x = 2\n")
    with pytest.raises(TrialError, match="cannot try fixes"):
        run_trials(str(d))


@pytest.mark.slow
def test_a_script_too_short_for_whole_periods_tries_its_throttle_searched(tmp_path):
    """The whole-period window (2 s skipped, then 2 s of whole periods of 500 steps) does not fit
    in a script of 400 steps of 10 ms: the throttle is timed by the steady-state search, as other fixes."""
    import hashlib

    from trainprof.fix.trials import run_trials

    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import time
        import torch
        w = torch.nn.Parameter(torch.zeros(4))
        opt = torch.optim.SGD([w], lr=0.1)
        for step in range(400):
            time.sleep(0.01)
            (w * w).sum().backward()
            opt.step()
            print(f"step {step} {w.sum()}")
    """))
    sha = hashlib.sha256(script.read_bytes()).hexdigest()
    d = tmp_path / "run"
    d.mkdir()
    (d / "run.json").write_text(json.dumps({"script": str(script), "script_sha256": sha, "argv": []}))
    f = {"rule": "excessive-logging", "path": "train.py", "line": 10, "saving_ms": 1.0,
         "fix": {"id": "excessive-logging", "params": {"every": 500}}}
    (d / "analysis.json").write_text(json.dumps({"script": "train.py", "script_sha256": sha, "root": "..",
                                                 "files": {"train.py": sha}, "findings": [f]}))
    out = run_trials(str(d), budget_s=1.0, rounds=2)
    (got,) = out["findings"]
    assert got["trial"]["params"] == {"every": 500} and got["trial"]["rounds"] == 2
    assert got["trial"]["speedup"] > 0


def test_a_short_budget_keeps_each_findings_proposal_first():
    """Two rounds of every variant would take 4x the budget: the top findings' proposals are
    timed (in rank order), then the safe fixes together; the rest of a sweep is left out, and one
    fix is always tried."""
    from trainprof.fix.trials import Candidate, Variant, _fit, _loader_knobs

    sweep = _loader_knobs({"workers": 8}, cores=16, as_run=0)
    assert sweep[0].params == {"num_workers": 8}  # the proposal, then the rest of the sweep
    loader = Candidate({"rule": "dataloader-stall"}, "dataloader-config", sweep)
    sync = Candidate({"rule": "item-sync"}, "item-sync", [Variant({}, "x", "item")])
    safe = Variant({}, "y", "safe")
    runs = [(loader, v, "p") for v in sweep] + [(sync, sync.variants[0], "q"), (None, safe, "r")]
    # 10 s a process, 100 s: 5 processes a round, one of them the original's
    keep, left = _fit(runs, 10.0, 1, 100.0, 2)
    assert [v.params for _, v, _ in keep] == [{"num_workers": 8}, {"num_workers": 4}, {}, {}]
    assert [v.params for _, v, _ in left] == [{"num_workers": 16}]
    keep, left = _fit(runs, 10.0, 2, 10.0, 2)  # not even one fits: the top one still runs
    assert [x[1] for x in keep] == [sweep[0]] and len(left) == len(runs) - 1
    keep, left = _fit(runs, 1.0, 1, 100.0, 2)
    assert keep == runs and left == []


def test_the_fixes_left_untried_are_named_in_a_note():
    from trainprof.estimate.estimates import untried

    note = untried({"skipped": [{"rule": "dataloader-stall", "line": 35, "fix": "dataloader-config",
                                 "params": {"num_workers": 16}}, {"fix": "safe fixes", "params": {}}, "junk"]})
    assert "--trial-budget" in note and "dataloader-config at line 35 (num_workers=16)" in note and "safe fixes" in note
    assert untried({"findings": []}) is None and untried({"skipped": "x"}) is None  # nothing left out; damaged input
