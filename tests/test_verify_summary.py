"""What `verify` prints of its rounds (fix/verify.py): the spread is shown, and rounds that
disagree are said to."""

from trainprof.fix.verify import Verified, summary


def test_rounds_that_agree_give_no_warning():
    v = Verified(original_ms=[20.0, 20.4, 19.8], patched_ms=[5.0, 5.1, 5.0])
    lines = summary(v)
    assert "measured speedup: 4x (min 3.96x, max 4x)" in lines, lines
    assert not any(ln.startswith("warning") for ln in lines)


def test_rounds_that_disagree_are_said_to():
    v = Verified(original_ms=[20.0, 20.0, 20.0], patched_ms=[5.0, 12.0, 6.0])
    warn = [ln for ln in summary(v) if ln.startswith("warning: the rounds disagree")]
    assert warn and "4x" in warn[0] and "1.67x" in warn[0]


def test_a_foreign_or_damaged_trials_json_is_ignored_entry_by_entry(tmp_path):
    """trials.json is input (a run directory from someone else): entries of the wrong shape are
    left out, a good one beside them still shows, and nothing crashes the report."""
    import json
    import shutil

    from conftest import SAMPLES

    from trainprof.engine import analyze
    from trainprof.report.prepare import prepare
    from trainprof.report.terminal import render

    d = tmp_path / "run"
    shutil.copytree(f"{SAMPLES}/fp32_transformer", d)
    sha = json.loads((d / "run.json").read_text())["script_sha256"]
    good = {"speedup": 3.5, "low": 3.2, "high": 3.9, "rounds": 3, "params": {"tf32": True, "x": [1]}, "steps": 40}
    doc = {"script_sha256": sha, "combined": {"speedup": "fast", "low": 1, "high": 2, "rounds": 2},
           "findings": [{"rule": "fp32-compute", "path": "fp32_transformer.py", "line": 20, "trial": good},
                        {"rule": "x", "path": "a.py", "line": "NaN", "trial": {"speedup": "nan"}},
                        {"rule": "y"}, "junk", {"rule": "fp32-compute", "path": 3, "line": 20,
                                                  "trial": {"speedup": -1, "low": 1, "high": 1, "rounds": 1}}]}
    (d / "trials.json").write_text(json.dumps(doc))
    a = analyze(str(d))
    (f,) = [f for f in a.findings if f.trial is not None]
    assert (f.rule, f.line, f.trial.speedup, f.trial.steps, dict(f.trial.params)) == ("fp32-compute", 20, 3.5, 40,
                                                                                    {"tf32": True})
    assert a.trial is None  # the combined entry's speedup is not a number
    render(prepare(a))
    (d / "trials.json").write_text(json.dumps(["not", "a", "dict"]))
    assert all(f.trial is None for f in analyze(str(d)).findings)


def test_trials_run_more_rounds_only_while_a_variants_rounds_disagree():
    from trainprof.fix.trials import Variant, _disagree

    orig = [30.0, 30.0]
    agree = Variant({}, None, "x", ms=[5.0, 5.5])  # 6.0x and 5.5x
    apart = Variant({}, None, "y", ms=[5.0, 30.0])  # 6.0x and 1.0x: the machine, not the fix
    gone = Variant({}, None, "z", ms=[5.0], failed="did not run")
    assert not _disagree(orig, [(None, agree, ""), (None, gone, "")])
    assert _disagree(orig, [(None, agree, ""), (None, apart, "")])
    assert not _disagree(orig[:1], [(None, apart, "")])  # one round: no spread yet
