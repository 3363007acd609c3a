"""What every detector returns: a Detection holding zero or more Findings."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing found wrong, about one point (a batch partition, an index label).

    `at` is the index label the finding refers to; for a breakout, the first point of the
    new regime. `score` says how far out the value is (a robust z, a ratio, a fraction),
    larger meaning worse. `detail` is a sentence a person reads in an alert.
    """

    at: Any
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    score: float
    detail: str
    # breakouts: the levels of the regimes before and after `at`
    before: float | None = None
    after: float | None = None
    # static checks: how many rows failed, which fraction, and a few of them as evidence
    count: int | None = None
    fraction: float | None = None
    examples: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Detection:
    """A detector's answer. `skipped` carries the reason when it could not judge
    (history too short, series empty): a new monitor is normal, not an error."""

    detector: str
    findings: tuple[Finding, ...] = ()
    skipped: str | None = None
    # per-point expected values and band over the points under test, for charts;
    # a DataFrame with columns expected, lower, upper indexed like the input, or None
    band: Any = None

    @property
    def fired(self) -> bool:
        return bool(self.findings)
