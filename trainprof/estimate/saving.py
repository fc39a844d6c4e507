"""What a finding's fix would save, as its rule states it: one typed value per finding,
turned into the estimate shown by estimates.py (the one place that does).

- WhatIf: a change to the recorded timelines, replayed (the usual case);
- Measured: a saving the rule measured itself, outside the replay (a wait for another rank);
- Bound: an upper bound (of either), labelled so and left out of the combined estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from .change import Change

Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class WhatIf:
    """What a rule's fix would change in the timelines, and what the estimate rests on."""

    change: Change
    basis: str
    confidence: Confidence = "medium"
    keep_fraction: float = 0.0  # share of the removed cost that stays (e.g. logging every N steps: 1/N)
    # The kept share runs all at once every 1/keep_fraction steps (a log or checkpoint every
    # N steps), not a little each step: a burst that long drains the GPU's queue, so it
    # adds to the step instead of hiding in the CPU's slack.
    periodic: bool = False


@dataclass(frozen=True)
class Measured:
    """A saving per step (unprofiled ms) the rule measured itself, off the unprofiled step."""

    ms: float
    basis: str
    confidence: Confidence = "medium"
    after: str = ""  # where the binding constraint moves after the fix


@dataclass(frozen=True)
class Bound:
    """At most what `of` gives: no single fix is known to get it. Shown as an upper bound,
    kept out of the combined estimate."""

    of: Union[WhatIf, Measured]


Saving = Union[WhatIf, Measured, Bound]
