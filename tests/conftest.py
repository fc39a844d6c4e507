import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SAMPLES = os.path.join(ROOT, "sample_traces")
SCRIPTS = os.path.join(ROOT, "tests", "scripts")
# trainprof's own code: a traceback through it names this folder (a test's stderr must not)
OURS = os.path.join(os.path.dirname(os.path.abspath(__import__("trainprof").__file__)), "")


def run_cli(*args, cwd=None, timeout=600, env=None):
    """Run the real `trainprof` CLI in a subprocess. Scripts run on the CPU, also on a
    GPU machine, so that CPU behaviour is what these tests see everywhere (GPU
    behaviour is tested on the real GPU runs in sample_traces/)."""
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", **(env or {}))
    return subprocess.run([sys.executable, "-m", "trainprof.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


@pytest.fixture
def cli():
    return run_cli
