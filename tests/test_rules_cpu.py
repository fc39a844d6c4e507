"""Rules that read the source and the line log, run for real on CPU examples:
the rule fires at its line on the slow version and not on the fixed one."""
import json
import os
import sys

import pytest

from conftest import EXAMPLES, SCRIPTS, run_cli

CASES = {
    # example: (rule, line, extra checks on the finding's evidence)
    "per_sample_loss": ("python-loop", 22, {"recurrence": "none"}),
    "checkpoint_every_step": ("checkpoint-io", 27, {}),
}


def _analyze(tmp_path, name, where=EXAMPLES):
    out = tmp_path / name
    # One intra-op thread: on a loaded 2-core machine, two threads that wait on each other
    # slowed the model's matmuls so much that the per-sample loop fell under the rule's share
    r = run_cli("analyze", "--run-dir", str(out), "--wait", "3", "--settle", "0", "--warmup", "1", "--active", "3",
                "-q", os.path.join(where, name + ".py"), "--steps", "20", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    return json.loads((out / "analysis.json").read_text())


@pytest.mark.parametrize("name", [n if n == "per_sample_loss" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(CASES)])
def test_rule_fires_at_its_line_and_not_when_fixed(tmp_path, name):
    rule, line, ev = CASES[name]
    found = [f for f in _analyze(tmp_path, name)["findings"] if f["rule"] == rule]
    assert [f["line"] for f in found] == [line]
    evidence = {e["label"]: e["value"] for e in found[0]["evidence"]}
    for k, v in ev.items():
        assert evidence[k] == v
    assert found[0]["saving_ms"] > 0 and found[0]["speedup"] > 1.0
    assert not [f for f in _analyze(tmp_path, name + ".fixed")["findings"] if f["rule"] == rule]


@pytest.mark.slow
def test_zero_grad_set_to_none_false_found_at_its_line(tmp_path):
    """A trace-backed finding of the unfused-optimizer rule on CPU too: the zero-filling
    zero_grad's own profiler spans; none once the zero-grad codemod has run."""
    from trainprof.fix.apply import all_codemods, fix_text

    zg = lambda a: [f for f in a["findings"] if (f.get("fix") or {}).get("id") == "zero-grad"]
    found = zg(_analyze(tmp_path, "zero_grad_false", SCRIPTS))
    assert [(f["rule"], f["line"]) for f in found] == [("unfused-optimizer", 16)]
    assert found[0]["fix"]["safety"] == "safe" and found[0]["saving_ms"] > 0
    src = os.path.join(SCRIPTS, "zero_grad_false.py")
    fixed = fix_text(src, open(src).read(), [all_codemods()["zero-grad"][1]], None).after
    (tmp_path / "fixed").mkdir()
    (tmp_path / "fixed" / "zero_grad_false.py").write_text(fixed)
    assert not zg(_analyze(tmp_path, "zero_grad_false", str(tmp_path / "fixed")))


def test_recurrent_loop_is_an_upper_bound_only(tmp_path):
    a = _analyze(tmp_path, "lstm_item")
    loop = [f for f in a["findings"] if f["rule"] == "python-loop"]
    assert len(loop) == 1 and loop[0]["line"] == 23
    ev = {e["label"]: e["value"] for e in loop[0]["evidence"]}
    assert ev["recurrence"] != "none"  # h/c carried across time steps: not vectorizable
    assert loop[0]["estimate"]["upper_bound"] is True
    assert a["estimate"]["combined_speedup"] < loop[0]["speedup"]  # bounds stay out of the combined estimate


def _torch_version():
    import torch

    return tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2])


@pytest.mark.skipif(not (sys.version_info >= (3, 12) and _torch_version() < (2, 6)),
                    reason="needs the torch profiler bug of torch 2.4/2.5 on Python 3.12")
def test_profiler_failure_is_retried_without_stacks(tmp_path):
    # torch 2.4/2.5 on Python 3.12, with stacks and torch.save: "Python replay stack is empty".
    a = _analyze(tmp_path, "checkpoint_every_step")
    assert any("captured without them" in n for n in a["notes"])
    assert [f["line"] for f in a["findings"] if f["rule"] == "checkpoint-io"] == [27]


def test_a_static_finding_on_a_branch_not_taken_is_no_cost_of_the_run(tmp_path):
    """Code that ran in this run (Run.ran): a debugging call in the loop, under a branch never
    taken, is linted but, measured, goes to the checked list, not the findings."""
    a = _analyze(tmp_path, "branch_not_taken", where=SCRIPTS)
    assert a["not_run"] == [{"rule": "debug-apis", "path": "branch_not_taken.py", "line": 11}]
    assert "debug-apis" not in {f["rule"] for f in a["findings"]}
    from trainprof.engine import analyze

    run = analyze(str(tmp_path / "branch_not_taken"), script=os.path.join(SCRIPTS, "branch_not_taken.py")).run
    assert run.ran(9) is True and run.ran(11) is False
    assert run.ran(4) is True  # before the loop: the capture's coverage saw it run


def test_static_findings_only_for_setup_code_that_ran(tmp_path):
    """A multi-GPU branch at setup that this run does not take: its finding goes to the checked
    list; a call in a function never called stays (its code may run elsewhere: a Dataset's
    methods run in the loader's workers)."""
    a = _analyze(tmp_path, "setup_branch", where=SCRIPTS)
    assert a["not_run"] == [{"rule": "dataparallel", "path": "setup_branch.py", "line": 10}]
    assert ("debug-apis", 15) in {(f["rule"], f["line"]) for f in a["findings"]}
    from trainprof.engine import analyze

    run = analyze(str(tmp_path / "setup_branch"), script=os.path.join(SCRIPTS, "setup_branch.py")).run
    assert run.ran(8) is True and run.ran(10) is False and run.ran(15) is None
    lines = json.loads((tmp_path / "setup_branch" / "lines.json").read_text())
    assert all(not f.startswith("<") and os.path.isfile(f) for f in lines["files"])


@pytest.mark.slow
def test_cudnn_benchmark_only_where_convolutions_ran_on_the_gpu(tmp_path):
    # conv_fp32 builds conv layers and never sets benchmark (lint names it: test_lint_examples);
    # on the CPU no convolution kernel ran, so there is nothing to tune in this run
    a = _analyze(tmp_path, "conv_fp32")
    assert "cudnn-benchmark" not in {f["rule"] for f in a["findings"]}
    assert "cudnn-benchmark" not in {r["rule"] for r in a["skipped"]}  # it ran, and found nothing to tune
