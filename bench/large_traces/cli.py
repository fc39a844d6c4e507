"""The command line: build | check | measure | report | all, and `_child KIND TARGET` (measure.py's children)."""

from __future__ import annotations

import argparse
import os
import sys

from .common import DEFAULT_OUT, DEFAULT_SOURCE, MD, find_trace, run_dirs


def main(argv=None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["_child"]:
        from .children import child  # only what the child needs: the hta child runs in HTA's venv
        return child(argv[1], argv[2])
    from . import __doc__ as doc
    from .build import build, check
    from .measure import measure
    from .report import report

    ap = argparse.ArgumentParser(prog="python -m bench.large_traces", description=doc.split("\n\n")[0])
    ap.add_argument("cmd", choices=["build", "check", "measure", "report", "all"])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="a run directory to replicate")
    ap.add_argument("--sizes", default="100,500,1000", help="JSON sizes in MB")
    ap.add_argument("--formats", default=None, help="json,gz (default both, as measure.PLAN says)")
    ap.add_argument("--only", default=None, help="measure only these kinds (comma-separated)")
    ap.add_argument("--profile-sizes", default=None, help="sizes to run tp_profile on (default: the smallest)")
    ap.add_argument("--hta-python", default=os.environ.get("HTA_PYTHON", "/tmp/hta-venv/bin/python"))
    ap.add_argument("--hta-timeout", type=float, default=1200.0, help="seconds per HTA run (20 min)")
    ap.add_argument("--ijson-max-s", type=float, default=300.0, help="skip ijson where it would take longer")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per other run")
    ap.add_argument("--md", default=MD, help="where `report` writes (default bench/LARGE_TRACES.md)")
    args = ap.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.formats = set(args.formats.split(",")) if args.formats else None
    args.profile_sizes = [int(s) for s in args.profile_sizes.split(",")] if args.profile_sizes else None
    os.makedirs(args.out, exist_ok=True)
    if args.cmd in ("build", "all"):
        build(args)
    if args.cmd == "check":  # the built traces' consistency (loads each whole: use a small size)
        name = os.path.basename(os.path.normpath(args.source))
        bad = [p for mb in args.sizes for p in check(find_trace(run_dirs(args.out, name, mb)[1]))]
        check(find_trace(args.source))
        sys.exit(1 if bad else 0)
    if args.cmd in ("measure", "all"):
        measure(args)
    if args.cmd in ("report", "all"):
        report(args)
