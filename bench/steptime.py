"""Time a training script's steps without the profiler: python bench/steptime.py SCRIPT [ARGS...]

Skips STEPTIME_SKIP optimizer steps (default 10), times STEPTIME_STEPS (default 20)
with one device sync at each edge; prints one JSON line and exits. The runner is
trainprof's own (trainprof/capture/steptime.py, also behind `trainprof verify`).
"""
import os
import sys

os.environ.setdefault("TRAINPROF_SKIP", os.environ.get("STEPTIME_SKIP", "10"))
os.environ.setdefault("TRAINPROF_STEPS", os.environ.get("STEPTIME_STEPS", "20"))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainprof.capture.steptime import main  # noqa: E402

if __name__ == "__main__":
    main()
