"""The one Finding type every rule returns and every output renders."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Mapping, Union

from .estimate.saving import Saving

Severity = Literal["high", "medium", "low", "info"]
Safety = Literal["safe", "unsafe"]


def fmt_num(v) -> str:
    """A measured number as shown: 3 significant digits, or thousands grouped from 100; never
    an exponent (`1,205`, `38.8`, `0.0000123`)."""
    if isinstance(v, float):
        if abs(v) >= 100 or v != v or v in (float("inf"), float("-inf")):
            return f"{v:,.0f}"
        if v == 0:
            return "0"
        s = f"{float(f'{v:.3g}'):.{max(0, 2 - math.floor(math.log10(abs(v))))}f}"
        return s.rstrip("0").rstrip(".") if "." in s else s
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


@dataclass(frozen=True)
class Evidence:
    """One measured number, with its unit, as shown to the user."""

    label: str
    value: float | int | str
    unit: str = ""

    def text(self) -> str:
        return f"{self.label}: {fmt_num(self.value)}{(' ' + self.unit) if self.unit else ''}"


@dataclass(frozen=True)
class Fix:
    id: str  # a codemod's id where one applies it (`trainprof apply --fix ID`), else the rule's
    safety: Safety | None  # None: advice only, never applied
    summary: str
    # what the codemod needs from the measurement (e.g. {"every": 500} for a logging guard)
    params: Mapping[str, Union[int, float, str]] | None = field(default=None, compare=False)
    # the diff the codemod would make at the finding (report/prepare.py; None: not previewed)
    diff: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Estimate:
    """What a fix would save, as shown: made from the finding's saving by estimate/estimates.py."""

    saving_ms: float  # per step, in unprofiled time
    speedup: float
    basis: str  # which measured times the estimate rests on
    confidence: Literal["high", "medium", "low"]
    bound: bool = False  # True: an upper bound, not a prediction
    after: str = ""  # where the binding constraint moves after the fix


@dataclass(frozen=True)
class HotLine:
    """A line of the user's code and its time per unit of work (a loader's batch)."""

    path: str
    line: int
    ms: float


STATIC = "static: suspected, not measured; `trainprof analyze` measures it"  # a lint finding's wording
TRIAL_SPREAD = 1.5  # a trial's rounds further apart than this factor measured the machine, not the fix


@dataclass(frozen=True)
class Trial:
    """The fix, run: its measured speedup over interleaved rounds of fresh, unprofiled processes
    (trainprof/fix/trials.py), and the knob values it was best with."""

    speedup: float  # median over the rounds
    low: float
    high: float
    rounds: int
    params: Mapping[str, Union[int, float, str]] | None = None
    change: str = ""
    parity: str = ""
    steps: int | None = None  # steps each patched process timed (median)

    @property
    def agrees(self) -> bool:
        """Whether its rounds agree (within TRIAL_SPREAD of each other): where they do not, the
        machine's load changed as much as the fix did, and the trial counts at its least."""
        return self.high <= TRIAL_SPREAD * self.low

    @property
    def counted(self) -> float:
        """The speedup it ranks by: the median of rounds that agree, else the least of them."""
        return self.speedup if self.agrees else self.low

    @property
    def text(self) -> str:
        knobs = ", ".join(f"{k}={v}" for k, v in (self.params or {}).items())
        return (f"measured {self.speedup:.3g}x ({self.low:.3g}-{self.high:.3g}x over {self.rounds} rounds"
                + (f", best with {knobs}" if knobs else "") + ")"
                + ("" if self.agrees else f": the rounds disagree (a loaded machine?), so it counts at its least, "
                                          f"{self.low:.3g}x; rerun `trainprof trials` on a quiet machine"))


@dataclass(frozen=True)
class Finding:
    rule: str
    title: str
    path: str
    line: int
    message: str
    end_line: int | None = None
    severity: Severity = "info"
    evidence: tuple[Evidence, ...] = ()
    # What the fix would save, as the rule states it (None: a static finding, unmeasured)
    saving: Saving | None = field(default=None, compare=False, repr=False)
    estimate: Estimate | None = None  # the saving as shown, set by the estimate stage
    fix: Fix | None = None
    trial: Trial | None = None  # the fix run and measured (`--trials`), where it was
    # where the time goes inside the work the finding names (the lines of a Dataset making a batch), costliest first
    hot_lines: tuple[HotLine, ...] = ()
    col: int | None = None  # 1-based column (lint: where the line's code starts, unless the rule says)

    @property
    def saving_ms(self) -> float:
        return self.estimate.saving_ms if self.estimate else 0.0
