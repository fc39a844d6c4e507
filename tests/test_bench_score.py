"""bench/corpus.py's scoring: a row whose ground truth's rounds lie further apart than the
tolerance shows their range and is counted as noisy, so a miss of the host's making is told
from a miss of the estimate's."""
import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _corpus():
    spec = importlib.util.spec_from_file_location("bench_corpus", os.path.join(ROOT, "bench", "corpus.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rec(name, orig, fixed, pred):
    return {"name": name, "base_ms": orig[0], "select": ["item-sync"], "fixed_pred": pred, "original_ms": orig,
            "findings": [{"rule": "item-sync", "line": 3, "speedup": pred}],
            "measured": [{"rule": "fixed", "line": None, "trial": None, "ms": fixed, "knobs": None,
                          "speedup": sorted(o / f for o, f in zip(orig, fixed))[len(orig) // 2]}]}


def test_wide_rounds_show_their_range_and_count_as_noise(tmp_path, monkeypatch):
    c = _corpus()
    monkeypatch.delenv("RUNS", raising=False)
    log = tmp_path / "corpus.jsonl"
    # rounds of 2x and 4x: a 3x estimate misses the median (4x) but the truth itself spans 2x
    wide = _rec("wide", [40.0, 20.0], [10.0, 10.0], 2.9)
    narrow = _rec("narrow", [20.0, 21.0], [10.0, 10.0], 1.0)
    log.write_text("\n".join(json.dumps(r) for r in (wide, narrow)) + "\n")
    out = c.report([str(log)])
    row = {line.split(" | ")[0].strip("| "): line for line in out.splitlines() if line.startswith("| ")}
    assert "(2-4)" in row["wide"] and "MISS" in row["wide"]
    assert "(" not in row["narrow"].split(" | ")[6] and "MISS" in row["narrow"]
    assert "1 of the misses have a measured speedup whose rounds lie further apart" in out
    assert c.score(narrow)["spread"] == (2.0, 2.1)


def test_a_round_more_where_a_variants_rounds_disagree():
    c = _corpus()
    assert c._wide([50.5, 28.8], [5.06, 4.84])  # seen on the device: 10x and 6x in two rounds
    assert not c._wide([20.0, 21.0], [10.0, 10.0])
    assert not c._wide([20.0], [10.0])  # one round: nothing to disagree with
    assert not c._wide([20.0, None], [10.0, 10.0])  # a failed timing is no round


def test_an_example_is_scored_against_trainprofs_own_fix_where_it_was_timed():
    """dataloader_stall's .fixed.py sets 8 workers, trainprof proposed 12: the estimate is of the
    latter, so its timing is the truth; the person's fix still decides what dominates."""
    c = _corpus()
    rec = _rec("loader", [36.0, 36.0], [6.0, 6.0], 9.0)
    assert not c.score(rec)["within"] and not c.score(rec)["own"]  # 9x against the .fixed.py's 6x
    rec["measured"].append({"rule": "proposed", "line": None, "trial": None, "ms": [4.0, 4.0], "knobs": None, "speedup": 9.0})
    s = c.score(rec)
    assert s["own"] and s["truth"] == 9.0 and s["within"] and s["dominant"]


def test_a_stopped_run_keeps_what_ran_and_the_order_asked_for(tmp_path, monkeypatch):
    c = _corpus()
    monkeypatch.delenv("RUNS", raising=False)
    names = [s["name"] for s in c.scripts([])]
    if len(names) >= 2:  # the corpus's scripts and their run.json are committed
        assert [s["name"] for s in c.scripts([names[-1], names[0], "nope"])] == [names[-1], names[0]]
    # stopped after one round of the original and of one variant of two
    rec = {"name": "cut", "base_ms": 20.0, "findings": [{"rule": "item-sync", "line": 3, "speedup": 2.0}],
           "original_ms": [20.0], "_variants": [{"rule": "item-sync", "line": 3, "trial": 2.1, "knobs": None, "ms": [10.0]},
                                                {"rule": "combined-safe", "line": None, "trial": None, "knobs": None}]}
    got = c._measured(rec)
    assert "_variants" not in got and [m["speedup"] for m in got["measured"]] == [2.0, None]
    log = tmp_path / "corpus.jsonl"
    log.write_text(json.dumps(got) + "\n" + json.dumps({"name": "early", "stopped": "x"}) + "\n")
    out = c.report([str(log)])
    assert "| early | stopped" in out and "| cut | 20 |" in out
