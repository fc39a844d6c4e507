"""Periodic work (rules/periodic_work.py): the block that runs at the measured period is found
in the source, and end to end on CPU the spikes are measured, kept out of the recorded steps and
amortised against the cost the script injects."""

import json
import os
import textwrap

import pytest
from conftest import SCRIPTS, run_cli

from trainprof.rules.periodic_work import site
from trainprof.source import index_source

LOOP = """
import torch
EVERY = 50
for step, (x, y) in enumerate(loader):
    loss = model(x).sum()
    loss.backward()
    opt.step()
    if step % 10 == 0:
        print(loss.item())
    if (step + 1) % {n} == 0:
        evaluate(model)
    if step % EVERY == 0:
        save(model)
"""


def index(text):
    return index_source("t.py", textwrap.dedent(text))


def test_the_block_whose_n_is_the_period():
    ix = index(LOOP.format(n=200))
    assert site(ix, 200)[0] == 10
    assert site(ix, 199)[0] == 10  # within a step
    assert site(ix, 10)[0] == 8
    assert site(ix, 100)[0] == 10  # a multiple: steps of several micro-batches
    assert site(ix, 7)[0] == 12  # no literal matches: the one block whose N is a name
    assert site(index(LOOP.format(n="EVERY")), 7) == (None, "")  # two such blocks: no guess


def test_no_loop_no_site():
    assert site(index("if step % 10 == 0:\n    print(step)\n"), 10) == (None, "")


@pytest.mark.slow
def test_periodic_evaluation_found_and_amortised(tmp_path):
    script = os.path.join(SCRIPTS, "periodic_eval.py")
    out = tmp_path / "run"
    r = run_cli("analyze", "--run-dir", str(out), "-q", "--settle", "30", script)
    assert r.returncode == 0, r.stderr
    run = json.loads((out / "run.json").read_text())
    st = run["steady"]
    assert st["reached"] and st["period"] == 25
    # the recorded steps hold no spike: none is many times the steady step
    assert max(run["profiled_step_ms"]) < 4 * st["step_ms"], run["profiled_step_ms"]
    a = json.loads((out / "analysis.json").read_text())
    f = next(f for f in a["findings"] if f["rule"] == "periodic-work")
    src = open(script).read().splitlines()
    assert src[f["line"] - 1].strip() == "if step % EVAL_EVERY == 0:"
    amortised = next(e["value"] for e in f["evidence"] if e["label"] == "amortised cost per step")
    assert amortised == pytest.approx(120 / 25, rel=0.3)  # the evaluation's sleep over its period
    assert f["estimate"]["upper_bound"]


@pytest.mark.slow
def test_a_period_longer_than_the_search_is_watched_for_after_the_trace(tmp_path):
    # every 150 steps of ~9 ms: the search is steady long before a second spike; the loop's
    # `if step % EVAL_EVERY` makes the capture watch the steps after the trace for it
    out = tmp_path / "run"
    r = run_cli("analyze", "--run-dir", str(out), "-q", "--settle", "30", os.path.join(SCRIPTS, "periodic_eval.py"),
                "--every", "150")
    assert r.returncode == 0, r.stderr
    st = json.loads((out / "run.json").read_text())["steady"]
    assert st["period"] == 150 and st["spike_source"] == "watch", st
    a = json.loads((out / "analysis.json").read_text())
    f = next(f for f in a["findings"] if f["rule"] == "periodic-work")
    amortised = next(e["value"] for e in f["evidence"] if e["label"] == "amortised cost per step")
    assert amortised == pytest.approx(120 / 150, rel=0.3)
