"""The full fuzz run: N broken runs (default 2000, fresh seeds) through trainprof's loader,
rules and renderers (the cases of tests/fuzz_traces.py; the test suite runs 150, fixed).

    python bench/fuzz.py [N]

Prints how many gave an analysis and how many a clear error (by its first words), and stops
at the first case that raised anything else, writing that run to /tmp/trainprof-fuzz-fail.
"""
import collections
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from fuzz_traces import analyze_and_render, broken_runs, write_run  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
counts: collections.Counter = collections.Counter()
FAIL = os.path.join(tempfile.gettempdir(), "trainprof-fuzz-fail")


@settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(broken_runs())
def fuzz(case):
    name, files, as_dir = case
    with tempfile.TemporaryDirectory() as tmp:
        run, out = os.path.join(tmp, "run"), os.path.join(tmp, "out")
        os.makedirs(run), os.makedirs(out)
        target, script = write_run(run, name, files, as_dir)
        try:
            outcome = analyze_and_render(target, script, out)
        except Exception:
            shutil.rmtree(FAIL, ignore_errors=True)
            shutil.copytree(run, FAIL)
            raise
    if outcome == "ok":
        counts["analysis"] += 1
    else:  # the error's gist: its text after the path, numbers and quotes dropped
        gist = re.sub(r"\S*/\S*|\d+|'[^']*'|\([^)]*\)?", "", outcome[len("error: "):]).split("(")[0]
        counts["error: " + " ".join(gist.split()[:6])] += 1


if __name__ == "__main__":
    t = time.monotonic()
    fuzz()
    total = sum(counts.values())
    print(f"{total} cases in {time.monotonic() - t:.0f} s: {counts['analysis']} analyses, "
          f"{total - counts['analysis']} clear errors, 0 other exceptions")
    for k, v in counts.most_common():
        print(f"{v:6d}  {k}")
