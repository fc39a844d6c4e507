"""Every sample run still analyzes as its golden analysis.json says (tests/goldens.py)."""
import json
import os

import pytest

import goldens


@pytest.mark.parametrize("run_dir", goldens.samples(), ids=os.path.basename)
def test_sample_matches_its_golden(run_dir):
    path = goldens.golden_path(run_dir)
    assert os.path.isfile(path), "no golden: run `python tests/goldens.py --update`"
    with open(path, encoding="utf-8") as f:
        golden = json.load(f)
    now = json.loads(goldens.analysis(run_dir))
    diff = goldens.differences(golden, now)
    assert not diff, "moved from the golden (`python tests/goldens.py --update` if meant):\n" + "\n".join(diff)


def test_goldens_are_location_free():
    """Paths in a golden are relative to its sample's folder: no machine's absolute path."""
    for run_dir in goldens.samples():
        with open(goldens.golden_path(run_dir), encoding="utf-8") as f:
            doc = json.load(f)
        paths = [doc["script"], doc["trace"], doc["root"], *doc["files"], *(f["path"] for f in doc["findings"])]
        assert not [p for p in paths if p and os.path.isabs(p)], os.path.basename(run_dir)


def test_a_moved_finding_is_caught():
    golden = {"findings": [{"rule": "item-sync", "path": "a.py", "line": 24, "severity": "high", "speedup": 1.5}],
              "estimate": {"combined_speedup": 1.5}}
    moved = {"findings": [{"rule": "item-sync", "path": "a.py", "line": 25, "severity": "high", "speedup": 1.5}],
             "estimate": {"combined_speedup": 1.5}}
    slower = {"findings": [dict(golden["findings"][0], speedup=1.4)], "estimate": {"combined_speedup": 1.4}}
    assert goldens.differences(golden, golden) == []
    assert goldens.differences(golden, moved) == ["finding 1: ('item-sync', 'a.py', 24, 'high', 1.5) -> "
                                                  "('item-sync', 'a.py', 25, 'high', 1.5)"]
    assert len(goldens.differences(golden, slower)) == 2
