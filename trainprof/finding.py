"""The one Finding type every rule returns and every output renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Severity = Literal["high", "medium", "low", "info"]
Safety = Literal["safe", "unsafe"]


def fmt_num(v) -> str:
    """A measured number as shown: 3 significant digits, or thousands grouped from 100."""
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
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
    params: dict | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Estimate:
    """What a fix would save, read off the what-if replay of this trace."""

    saving_ms: float  # per step, in unprofiled time
    speedup: float
    basis: str  # which measured times the estimate rests on
    confidence: Literal["high", "medium", "low"]
    bound: bool = False  # True: an upper bound, not a prediction
    after: str = ""  # where the binding constraint moves after the fix


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
    estimate: Estimate | None = None
    fix: Fix | None = None
    # Internal: the what-if change this finding's fix makes (see estimate.replay.Change).
    change: object | None = field(default=None, compare=False, repr=False)

    @property
    def saving_ms(self) -> float:
        return self.estimate.saving_ms if self.estimate else 0.0
