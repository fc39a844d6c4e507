"""Shim: `python bench/large_traces.py CMD ...` runs `python -m bench.large_traces CMD ...`.

The benchmark is the package bench/large_traces/ (its __init__.py says how to run it).
"""

if __name__ == "__main__":
    from large_traces.cli import main  # bench/ is sys.path[0]: this is the package bench/large_traces/

    main()
