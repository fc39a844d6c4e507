"""Turn findings into step time saved, from this run only.

The rules state a saving (saving.py); estimates.py turns it into the estimate shown,
replaying the recorded timelines (timeline.py, intervals.py, replay.py) after the
profiler's cost is taken out (calibration.py).
"""

from .change import Change
from .saving import Bound, Measured, Saving, WhatIf

__all__ = ["Bound", "Change", "Measured", "Saving", "WhatIf"]
