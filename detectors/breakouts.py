"""Breakouts: points where a series settles into a new regime (a level shift or a change of
trend) that persists, found on the series with its season removed.

The model of a regime is a straight line, so steady growth inside a regime is not a
change. The search is ruptures' binary segmentation over a piecewise-linear cost; every
candidate it proposes must then pass two tests against its neighbours, refitted whenever
one of them is dropped:

- statistical: splitting the two neighbouring regimes at the point must save more than a
  BIC penalty measured against their own residual noise (so a curved but smooth series
  does not split everywhere just because its point-to-point noise is tiny);
- practical: over the first `min_size` points of the new regime, its level must differ from
  what the old regime's line predicts by at least `min_change` (a fraction of that level).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd
import ruptures as rpt
from ruptures.base import BaseCost

from detectors._rules import check_integer, check_number, first_under_test, is_integer, under_test
from detectors.numbers import fmt_number
from detectors.result import Detection, Finding
from detectors.seasonal import find_period, seasonal_adjust

NAME = "breakouts"
# the tag that opens a finding's detail ("[breakout] level 100 -> 150 (+50%) from ...")
TAG = "breakout"

# min_size=None: an eighth of the history, between these bounds. 24 is what
# Twitter's BreakoutDetection example uses; below 5 points a line through a regime is noise.
DEFAULT_MAX_MIN_SIZE = 24
SMALLEST_MIN_SIZE = 5
# fewer valid points than this and no regime can be told from noise
MIN_POINTS = 2 * SMALLEST_MIN_SIZE
# points further than this many noise sds from a short running median are clipped before
# the search: one wild batch must not be read as a regime of its own
CLIP_SIGMAS = 4.0
CLIP_WINDOW = 7
# a change adds a location, a level and a slope
PARAMETERS_PER_CHANGE = 3
# the cost of a regime: "linear", the squared residuals of its line (every regime shares
# one noise level, so a change of variance alone is no breakout), or "gaussian", a line
# plus the regime's own noise variance (the Gaussian likelihood, n log of the residual
# variance: a series that turns from calm to wild at one level is two regimes). With the
# Gaussian cost a change also adds a variance. "gaussian" with penalty 4 and min_size 10
# won out of fold on TCPD (bench/detection.py --cv: F1 .756 -> .790, Cover .718 -> .721)
# but is not the default: min_size 10 leaves a version's AUC fall seen for 14 days of
# labels unconfirmed (tests/monitors/test_performance.py), a latency the benchmark
# does not weigh. Searched by bench/sweep.py.
COST = "linear"


class PiecewiseLinearCost(BaseCost):
    """Residual sum of squares of a least-squares line through the segment.

    Running sums make every segment O(1); `errors` scores many splits in one numpy pass.
    Time is scaled to [0, 1] to keep the sums well conditioned on long series.
    """

    model = "piecewise_linear"
    min_size = 3

    def fit(self, signal) -> "PiecewiseLinearCost":
        y = np.asarray(signal, dtype=float).ravel()
        n = len(y)
        t = np.arange(n) / max(n, 1)
        self.signal = y.reshape(-1, 1)
        self._sums = np.zeros((6, n + 1))
        np.cumsum(np.vstack([np.ones(n), t, t * t, y, t * y, y * y]), axis=1,
                  out=self._sums[:, 1:])
        self._n = n
        return self

    def errors(self, starts, ends) -> np.ndarray:
        count, st, stt, sy, sty, syy = self._sums[:, ends] - self._sums[:, starts]
        with np.errstate(divide="ignore", invalid="ignore"):
            var_y = syy - sy * sy / count
            var_t = stt - st * st / count
            cov = sty - st * sy / count
            explained = np.where(var_t > 0, cov * cov / var_t, 0.0)
        return np.maximum(var_y - explained, 0.0)

    def error(self, start, end) -> float:
        return float(self.errors(np.array([start]), np.array([end]))[0])

    def lines(self, starts, ends) -> tuple[np.ndarray, np.ndarray]:
        """Each segment's line: intercept at position 0 and slope per position."""
        count, st, stt, sy, sty, _ = self._sums[:, ends] - self._sums[:, starts]
        var_t = stt - st * st / count
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(var_t > 0, (sty - st * sy / count) / var_t, 0.0)
        return (sy - slope * st) / count, slope / self._n


class GaussianLinearCost(PiecewiseLinearCost):
    """n log of the residual variance around the segment's line: twice the Gaussian
    negative log-likelihood (up to a constant) when each segment has its own variance.
    The variance is floored at `floor` so that a segment a line fits exactly is not
    infinitely good."""

    model = "gaussian_linear"

    def __init__(self, floor: float) -> None:
        self.floor = floor

    def errors(self, starts, ends) -> np.ndarray:
        count = (ends - starts).astype(float)
        rss = super().errors(starts, ends)
        return count * np.log(np.maximum(rss / count, self.floor))


class _Binseg(rpt.Binseg):
    """ruptures' binary segmentation, each segment's candidate splits scored at once."""

    @lru_cache(maxsize=None)
    def single_bkp(self, start, end):
        candidates = np.arange(start + self.min_size, end - self.min_size + 1, self.jump)
        if not len(candidates):
            return None, 0
        whole = self.cost.error(start, end)
        gains = (whole - self.cost.errors(np.full_like(candidates, start), candidates)
                 - self.cost.errors(candidates, np.full_like(candidates, end)))
        best = int(np.argmax(gains))
        return int(candidates[best]), float(gains[best])


def detect_breakouts(series: pd.Series, *, period: int | None = None,
                     min_size: int | None = None, penalty: float = 2.0,
                     min_change: float = 0.1, since=None) -> Detection:
    """Find the points where `series` enters a new, lasting regime.

    period: the seasonal period in points; found from the series when None; 0 or 1 when
        the series has no season.
    min_size: the fewest points a regime may have; None: an eighth of the history, 5 to 24.
        A history shorter than two regimes of min_size points is skipped.
    penalty: a multiplier on the BIC penalty a change must beat (higher: fewer breakouts).
    min_change: the smallest relative change of level reported (0.1: 10%); 0 turns the
        practical floor off and leaves only the statistical test.
    since: only breakouts whose new regime starts at or after this label are reported;
        earlier points are context. A new regime is told apart only once it has lasted
        about `min_size` points, so a run that judges its newest batches should pass a
        `since` that many points back and let alert deduplication merge the repeats.

    The defaults (penalty 2, min_change 0.1, min_size as above) were chosen on the TCPD
    development set for all series at once (bench/sweep.py, bench/detection.py --cv),
    never per file.

    A finding's `at` is the first point of the new regime; `before` is the old regime's
    level projected over the new regime's first `min_size` points, `after` the new regime's
    level there (`expected` and `value` carry the same), `lower`/`upper` the band a new
    level had to leave, and `score` the change in robust noise standard deviations.
    """
    _check_options(series, period, min_size, penalty, min_change)
    under_test(series.index, since)  # a since that does not fit is refused before any skip
    values = pd.to_numeric(series, errors="coerce").astype(float)
    valid = np.isfinite(values.to_numpy())
    n = int(valid.sum())
    if n == 0:
        return Detection(NAME, skipped="no data: the series is empty or all missing")
    if n < MIN_POINTS:
        return Detection(NAME, skipped=f"history {n} < {MIN_POINTS} points")
    size = _min_size(n) if min_size is None else min_size
    if n < 2 * size:
        return Detection(NAME, skipped=f"history {n} < 2 x min_size {size} points")
    if np.ptp(values.to_numpy()[valid]) == 0:
        return Detection(NAME, skipped="constant series: nothing can shift")

    # the season only needs the spacing of the index, which a time zone does not change
    naive = values
    if isinstance(values.index, pd.DatetimeIndex) and values.index.tz is not None:
        naive = values.set_axis(values.index.tz_localize(None))
    if period is None:
        period = find_period(naive)
    if period and period >= 2:
        adjusted = seasonal_adjust(naive, period)["adjusted"].to_numpy()[valid]
    else:
        adjusted = values.to_numpy()[valid]
    labels = series.index[valid]

    sigma = _noise(adjusted)
    if sigma == 0:
        # every step the same: a straight line, which has no breakout
        return Detection(NAME)
    running = pd.Series(adjusted).rolling(CLIP_WINDOW, center=True, min_periods=1).median()
    running = running.to_numpy()
    clipped = np.clip(adjusted, running - CLIP_SIGMAS * sigma, running + CLIP_SIGMAS * sigma)

    if COST == "gaussian":
        # a likelihood: the penalty is BIC's own, in its units (no noise variance)
        cost = GaussianLinearCost(floor=1e-6 * sigma ** 2).fit(clipped)
        pen = penalty * (PARAMETERS_PER_CHANGE + 1) * math.log(n)
    else:
        cost = PiecewiseLinearCost().fit(clipped)
        pen = penalty * PARAMETERS_PER_CHANGE * sigma ** 2 * math.log(n)
    candidates = _Binseg(custom_cost=cost, min_size=size, jump=1).fit(clipped).predict(
        pen=pen)[:-1]
    changes = _prune(cost, list(candidates), n, size, penalty, min_change)

    first = first_under_test(labels, since)
    findings = tuple(
        _finding(cost, changes, i, labels, size, sigma, min_change)
        for i, at in enumerate(changes) if at >= first)
    return Detection(NAME, findings=findings)


# --- internals --------------------------------------------------------------------------


def _check_options(series, period, min_size, penalty, min_change) -> None:
    if not isinstance(series, pd.Series):
        raise ValueError(f"series: expected a pandas Series, got {type(series).__name__}")
    check_integer(period, "period", ge=0, allow_none=True)
    check_integer(min_size, "min_size", ge=2, allow_none=True)
    check_number(penalty, "penalty", gt=0)
    check_number(min_change, "min_change", ge=0)


def _min_size(n: int) -> int:
    return int(min(DEFAULT_MAX_MIN_SIZE, max(SMALLEST_MIN_SIZE, n // 8)))


def _noise(values: np.ndarray) -> float:
    """Robust sd of the noise: the MAD of first differences, which a level shift or a
    trend barely moves (a shift makes one large difference, a trend moves the median)."""
    steps = np.diff(values)
    mad = float(np.median(np.abs(steps - np.median(steps))))
    if mad > 0:
        return 1.4826 * mad / math.sqrt(2)
    # more than half the steps equal (a step function): fall back on their spread
    return float(np.std(steps)) / math.sqrt(2)


def _strengths(cost, changes, n, size, penalty, min_change) -> np.ndarray:
    """How far each change clears the weaker of its two tests against its neighbours
    (>= 1: it passes)."""
    ats = np.asarray(changes)
    starts = np.r_[0, ats[:-1]]
    ends = np.r_[ats[1:], n]
    whole = cost.errors(starts, ends)
    split = cost.errors(starts, ats) + cost.errors(ats, ends)
    points = ends - starts
    if isinstance(cost, GaussianLinearCost):
        # already a likelihood ratio: against BIC's penalty directly
        saved = whole - split
        strength = saved / (penalty * (PARAMETERS_PER_CHANGE + 1) * np.log(points))
        return _practical(cost, strength, starts, ats, ends, size, min_change)
    # the residual noise of the two regimes themselves, not of the whole series: a smooth
    # curve has tiny point-to-point noise, yet is no sequence of breakouts
    residual = split / np.maximum(points - 4, 1)  # two lines: four fitted parameters
    with np.errstate(divide="ignore", invalid="ignore"):
        saved = np.where(residual > 0, (whole - split) / residual, np.inf)
    strength = saved / (penalty * PARAMETERS_PER_CHANGE * np.log(points))
    return _practical(cost, strength, starts, ats, ends, size, min_change)


def _practical(cost, strength, starts, ats, ends, size, min_change) -> np.ndarray:
    """The statistical strength capped by the practical test (the change of level)."""
    if min_change > 0:
        before, after = _levels(cost, starts, ats, ends, size)
        with np.errstate(divide="ignore", invalid="ignore"):
            change = np.where(before != 0, np.abs(after - before) / np.abs(before), np.inf)
        strength = np.minimum(strength, change / min_change)
    return strength


def _prune(cost, changes, n, size, penalty, min_change) -> list[int]:
    """Drop the weakest failing change, refit its neighbours, until all pass."""
    while changes:
        strengths = _strengths(cost, changes, n, size, penalty, min_change)
        weakest = int(np.argmin(strengths))
        if strengths[weakest] >= 1:
            break
        del changes[weakest]
    return changes


def _levels(cost, starts, ats, ends, size) -> tuple[np.ndarray, np.ndarray]:
    """The old regime's line and the new regime's line, averaged over the new regime's
    first points: what was expected there, and what came."""
    middle = (ats + np.minimum(ats + size, ends) - 1) / 2
    old_intercept, old_slope = cost.lines(starts, ats)
    new_intercept, new_slope = cost.lines(ats, ends)
    return old_intercept + old_slope * middle, new_intercept + new_slope * middle


def _finding(cost, changes, i, labels, size, sigma, min_change) -> Finding:
    at = changes[i]
    start = changes[i - 1] if i > 0 else 0
    end = changes[i + 1] if i + 1 < len(changes) else len(labels)
    before, after = (float(level[0]) for level in
                     _levels(cost, np.array([start]), np.array([at]), np.array([end]), size))
    # the band a new level had to leave: the practical floor, or the wobble of a
    # min_size-point average, whichever is wider
    half_width = max(min_change * abs(before), CLIP_SIGMAS * sigma / math.sqrt(size))
    relative = f" ({(after - before) / abs(before):+.0%})" if before != 0 else ""
    label = labels[at]
    if isinstance(label, np.generic):
        label = label.item()
    if isinstance(label, pd.Timestamp):
        when = label.strftime("%Y-%m-%d %H:%M").removesuffix(" 00:00")
    elif is_integer(label):
        when = f"point {label}"
    else:
        when = str(label)
    return Finding(
        at=label, value=after, expected=before,
        lower=before - half_width, upper=before + half_width,
        score=abs(after - before) / sigma,
        detail=f"[{TAG}] level {fmt_number(before)} -> {fmt_number(after)}{relative} from {when}",
        before=before, after=after)
