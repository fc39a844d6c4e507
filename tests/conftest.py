import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SAMPLES = os.path.join(ROOT, "sample_traces")
SCRIPTS = os.path.join(ROOT, "tests", "scripts")


def run_cli(*args, cwd=None, timeout=600):
    """Run the real `trainprof` CLI in a subprocess."""
    return subprocess.run([sys.executable, "-m", "trainprof.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
