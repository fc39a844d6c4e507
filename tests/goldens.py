"""The goldens: each sample run's analysis.json (sample_traces/<run>/analysis.json), as
`trainprof report` writes it. tests/test_goldens.py re-analyzes every sample and compares what
a user acts on -- each finding's rule, file, line, severity and speedup, in rank order, and the
combined estimate -- leaving aside what may vary (messages' wording, evidence, hashes).

    python tests/goldens.py            # check every sample, as the test does
    python tests/goldens.py --update   # rewrite them all (after a change meant to move them)
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "sample_traces")
REL = 1e-3  # speedups agree to this (numpy versions and Pythons sum in different orders: ~1e-4 seen)


def samples() -> list[str]:
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(SAMPLES, "*", "run.json")))


def analysis(run_dir: str) -> bytes:
    """The analysis.json trainprof writes for run_dir now."""
    from trainprof.engine import analyze
    from trainprof.report import jsonout
    from trainprof.report.prepare import prepare

    return jsonout.encode(prepare(analyze(run_dir)))


def key(doc: dict) -> dict:
    """What the goldens hold a run to."""
    est = doc.get("estimate") or {}
    return {"findings": [(f["rule"], f["path"], f["line"], f["severity"], f["speedup"]) for f in doc["findings"]],
            "combined": est.get("combined_speedup")}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=REL, abs_tol=1e-9)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def differences(golden: dict, now: dict) -> list[str]:
    """What moved, one line each ([] when the run still analyzes as its golden says)."""
    g, n = key(golden), key(now)
    out = []
    if not _same(g["combined"], n["combined"]):
        out.append(f"combined speedup {g['combined']} -> {n['combined']}")
    if len(g["findings"]) != len(n["findings"]) or not _same(g["findings"], n["findings"]):
        gs, ns = g["findings"], n["findings"]
        for k in range(max(len(gs), len(ns))):
            a = gs[k] if k < len(gs) else None
            b = ns[k] if k < len(ns) else None
            if not _same(a, b):
                out.append(f"finding {k + 1}: {a} -> {b}")
    return out


def golden_path(run_dir: str) -> str:
    return os.path.join(run_dir, "analysis.json")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--update", action="store_true", help="rewrite every sample's analysis.json")
    args = p.parse_args(argv)
    failed = 0
    for d in samples():
        data = analysis(d)
        name = os.path.basename(d)
        if args.update:
            with open(golden_path(d), "wb") as f:
                f.write(data)
            print(f"wrote {os.path.relpath(golden_path(d))}")
            continue
        now = json.loads(data)
        try:
            with open(golden_path(d), encoding="utf-8") as f:
                golden = json.load(f)
        except FileNotFoundError:
            print(f"{name}: no golden (python tests/goldens.py --update)")
            failed += 1
            continue
        diff = differences(golden, now)
        failed += bool(diff)
        print(f"{name}: " + ("ok" if not diff else "\n  " + "\n  ".join(diff)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
