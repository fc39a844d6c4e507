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
