"""Large traces: how fast, and in how much memory, trainprof reads and analyzes them.

Run by hand (not by the test suite), on any machine, from the repository root; no GPU needed.

    python -m bench.large_traces build   [--out DIR] [--source RUN] [--sizes 100,500,1000]
    python -m bench.large_traces check   [--out DIR] --sizes 30   # consistency of a (small) build
    python -m bench.large_traces measure [--out DIR] [--sizes ...] [--hta-python PY] [--only KIND,...]
    python -m bench.large_traces report  [--out DIR] [--md PATH]  # -> bench/LARGE_TRACES.md
    python -m bench.large_traces all     [...]            # build, measure, report

(`python bench/large_traces.py ...`, a shim, runs the same.)

DIR defaults to /tmp/trainprof-large (keep it out of the repository: each size is written twice,
as .json and as .json.gz). HTA runs in its own venv: `python -m venv /tmp/hta-venv &&
/tmp/hta-venv/bin/pip install HolisticTraceAnalysis==0.5.0` (--hta-python, default
/tmp/hta-venv/bin/python); ijson must be importable by this Python. How long a build and a
measure took, and everything the numbers showed, is written in bench/LARGE_TRACES*.md, not here.

The modules, by job:

    plan.py      Plan: what a source run's events become in a trace of N copies of its step window
    build.py     build (the traces, run.json, lines.json, a .meta.json per size) and check
    children.py  one measure in a fresh process (`_child KIND TARGET`): prints one JSON line
    measure.py   runs the children (wall time, peak RSS, process-tree PSS), appends results.jsonl
    report.py    writes the .md from DIR/results.jsonl and the environment
    cli.py       the command line
    common.py    paths, constants and small helpers shared by the others

`report` rewrites the whole file from DIR/results.jsonl (the latest line of each measure wins)
except the block between `<!-- notes:begin -->` and `<!-- notes:end -->`, where the findings
written by hand live: measured figures and conclusions go there, never into this code.
"""
