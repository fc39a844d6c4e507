"""`python -m bench.large_traces CMD ...` from the repository root (see __init__.py).

`measure` also starts each child as `python bench/large_traces _child KIND TARGET` (this directory
run as a script): then bench/, not the package directory, goes first on sys.path, as it did for
the single-file script, so the child imports trainprof from wherever it is installed."""

if __package__:
    from .cli import main
else:  # run as a directory
    import os
    import sys

    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from large_traces.cli import main

main()
