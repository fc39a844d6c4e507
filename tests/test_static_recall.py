"""The labelled corpus of bench/static_recall.py: its labels point at the code they name, and
`trainprof lint` finds at least the goal's share of them at their lines (over the files present:
corpus/'s third-party scripts only where `python corpus/get.py` put them), with nothing above
info on examples/tuned.py."""
import importlib.util
import json
import os

import pytest

from conftest import ROOT
from trainprof.engine import all_rules


def _bench():
    spec = importlib.util.spec_from_file_location("static_recall", os.path.join(ROOT, "bench", "static_recall.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SR = _bench()


def _corpus_files() -> set[str]:
    with open(os.path.join(ROOT, "corpus", "sources.json"), encoding="utf-8") as f:
        return {f"corpus/{s['name']}/{x['file']}" for s in json.load(f) for x in s["files"]}


def test_labels_are_well_formed_and_point_at_their_code():
    with open(SR.LABELS, encoding="utf-8") as f:
        labels = json.load(f)
    known, fetched = {r.id for r in all_rules()}, _corpus_files()
    seen = set()
    for lb in labels:
        where = f"{lb.get('path')}:{lb.get('line')}"
        assert set(lb) == {"path", "line", "rule", "code", "why"}, where
        assert isinstance(lb["line"], int) and lb["line"] >= 1 and lb["rule"] in known and lb["why"].strip(), where
        assert (lb["path"], lb["line"], lb["rule"]) not in seen, f"{where}: labelled twice"
        seen.add((lb["path"], lb["line"], lb["rule"]))
        assert lb["path"].startswith("examples/") or lb["path"] in fetched, f"{where}: not a file corpus/get.py fetches"
        path = os.path.join(ROOT, lb["path"])
        if not os.path.exists(path):
            assert lb["path"].startswith("corpus/"), f"{where}: no such file"
            continue  # a third-party file not fetched here
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        assert lb["line"] <= len(lines) and lines[lb["line"] - 1].strip() == lb["code"], \
            f"{where}: the line is not `{lb['code']}` (the file moved under the label)"


def test_every_example_label_points_at_a_line():
    for lb in SR.example_labels():
        with open(os.path.join(ROOT, lb["path"]), encoding="utf-8") as f:
            assert lb["line"] <= len(f.read().splitlines()), lb


def test_lint_finds_the_labelled_problems_at_the_goal():
    s = SR.score()
    n, k = len(s["labels"]), len(s["hit"])
    missed = [f"{lb['path']}:{lb['line']} {lb['rule']}" for lb in s["miss"]]
    assert n >= 30 and k / n >= SR.GOAL, f"recall {k}/{n} under {SR.GOAL:.0%}; missed: {missed}"
    assert not s["tuned"], [(f.rule, f.line, f.severity) for f in s["tuned"]]


def test_the_score_counts_misses_and_unlabelled_findings(tmp_path, monkeypatch):
    """The scoring bites: a label moved off its line is a miss, and the finding it named is unlabelled."""
    with open(SR.LABELS, encoding="utf-8") as f:
        labels = json.load(f)
    ex = next(lb for lb in labels if lb["path"] == "examples/host_alloc.py" and lb["rule"] == "blocking-h2d")
    moved = tmp_path / "labels.json"
    moved.write_text(json.dumps([dict(ex, line=ex["line"] + 1)]))
    monkeypatch.setattr(SR, "LABELS", str(moved))
    monkeypatch.setattr(SR, "example_labels", lambda: [])
    s = SR.score()
    assert [lb["line"] for lb in s["miss"]] == [ex["line"] + 1] and not s["hit"]
    assert ("blocking-h2d", ex["line"]) in {(f.rule, f.line) for _, f in s["extra"]}
    assert "NOT met" in SR.render(s)


@pytest.mark.parametrize("path,rule", [("examples/conv_fp32.fixed.py", "fp32-compute"),
                                       ("examples/launch_bound_adam.fixed.py", "unfused-optimizer"),
                                       ("examples/host_alloc.fixed.py", "blocking-h2d"),
                                       ("examples/host_alloc.fixed.py", "host-alloc")])
def test_fixed_examples_lose_the_labelled_finding(path, rule):
    """An example's fixed version is a near-miss for the rule its label names."""
    from trainprof.lint import lint_file

    assert rule not in {f.rule for f in lint_file(os.path.join(ROOT, path)).findings}


def test_heldin_marks_name_known_rules_and_its_tuned_scripts_stay_quiet():
    """bench/heldin/: every `# expect:` names a rule, and the scripts written as tuned have nothing above info."""
    from trainprof.lint import lint_file

    known = {r.id for r in all_rules()}
    labels = SR.heldin_labels()
    assert len(labels) >= 40 and all(lb["rule"] in known for lb in labels), [lb for lb in labels if lb["rule"] not in known]
    tuned = [n for n in os.listdir(SR.HELDIN) if n.startswith("tuned_") and n.endswith(".py")]
    assert len(tuned) >= 2
    for n in tuned:
        loud = [(f.rule, f.line, f.severity) for f in lint_file(os.path.join(SR.HELDIN, n)).findings if f.severity != "info"]
        assert not loud, (n, loud)
