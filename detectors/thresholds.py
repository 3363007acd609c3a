"""Thresholds on a metric series: absolute bounds, and limits on the relative change
against a baseline (the previous point, the same point one season back, a trailing median).

Absolute bounds suit invariants (a null fraction must stay under 1%); for volumes and
levels, which grow and cycle, a relative change is the better default: "rows fell 60%
against the same weekday last week" stays right as the business grows.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from detectors._rules import check_choice, check_integer, check_number, under_test
from detectors.numbers import fmt_number
from detectors.result import Detection, Finding

BASELINES = ("previous", "season", "median")
DIRECTIONS = ("both", "up", "down")
# used when neither limit is given: a 50% move either way is worth a look on most metrics
DEFAULT_RELATIVE_LIMIT = 0.5


def absolute_threshold(series: pd.Series, *, lower: float | None = None,
                       upper: float | None = None, since: Any = None) -> Detection:
    """Points outside [lower, upper] (inclusive bounds; either may be open).

    The score is how far out the point is, relative to the bound it broke (to the band's
    width when there are both bounds), so 0.5 means "half a band beyond".
    """
    name = "absolute"
    values = _as_series(series)
    if lower is None and upper is None:
        raise ValueError("lower, upper: give lower, upper or both")
    lo = check_number(lower, "lower", allow_none=True)
    hi = check_number(upper, "upper", allow_none=True)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"lower: {lower} is greater than upper ({upper})")
    tested = values[under_test(values.index, since)]
    if tested.empty:
        return Detection(name, skipped="no points under test")
    present = tested.dropna()
    if present.empty:
        return Detection(name, skipped="every point under test is missing")
    band = pd.DataFrame({"expected": np.nan,
                         "lower": np.nan if lo is None else lo,
                         "upper": np.nan if hi is None else hi}, index=tested.index)
    if lo is not None and hi is not None and hi > lo:
        scale = hi - lo
    else:
        scale = None
    findings = []
    for at, value in present.items():
        if lo is not None and value < lo:
            excess, side, bound = lo - value, "below", lo
        elif hi is not None and value > hi:
            excess, side, bound = value - hi, "above", hi
        else:
            continue
        unit = scale if scale is not None else (abs(bound) or 1.0)
        findings.append(Finding(
            at=at, value=float(value), expected=None, lower=lo, upper=hi,
            score=float(excess / unit),
            detail=f"[absolute] {_label(at)}: {fmt_number(value)} {side} the "
                   f"{'lower' if side == 'below' else 'upper'} bound {fmt_number(bound)}"))
    return Detection(name, tuple(findings), band=band)


def proportional_threshold(series: pd.Series, *, baseline: str = "previous", period: int = 7,
                           seasons: int = 1, window: int = 7, max_increase: float | None = None,
                           max_decrease: float | None = None, direction: str = "both",
                           min_abs_change: float = 0.0, since: Any = None) -> Detection:
    """Points whose relative change against a baseline exceeds a limit.

    baseline: "previous" (the point before), "season" (the point `period` steps back: the
    same weekday for daily data; with `seasons` > 1, the median of that point over the
    last `seasons` seasons), "median" (the median of the `window` points before).
    With one season, the week after an incident is judged against the incident, so the
    recovery fires too; `seasons=3` ignores one bad week, at the price of adopting a real
    level change only after two weeks.
    max_increase / max_decrease are relative (0.5 = 50%); when neither is given both are
    0.5. `direction` limits the test to rises ("up") or falls ("down"). A change smaller
    than `min_abs_change` in absolute terms never fires, so a count moving from 2 to 5 is
    not a 150% alarm. A point whose baseline is missing is not tested.

    For a DatetimeIndex, "one season back" is a calendar step (the index's frequency, or
    the typical spacing of its points) times `period`, so a missing day does not shift the
    comparison onto the wrong weekday.
    """
    name = "proportional"
    values = _as_series(series)
    check_choice(baseline, "baseline", BASELINES)
    check_choice(direction, "direction", DIRECTIONS)
    check_integer(period, "period", ge=1)
    check_integer(window, "window", ge=1)
    check_integer(seasons, "seasons", ge=1)
    # relative limits: 0.5 = 50%; a fall can't exceed 100% of the baseline
    up = check_number(max_increase, "max_increase", gt=0, allow_none=True)
    down = check_number(max_decrease, "max_decrease", gt=0, le=1, allow_none=True)
    if up is None and down is None:
        up = down = DEFAULT_RELATIVE_LIMIT
    floor = check_number(min_abs_change, "min_abs_change", ge=0)
    if direction == "up":
        down = None
    elif direction == "down":
        up = None
    if up is None and down is None:
        raise ValueError(f"direction: {direction!r} leaves no limit to test "
                         f"(give max_increase for 'up', max_decrease for 'down')")

    tested_index = values.index[under_test(values.index, since)]
    if values.dropna().empty:
        return Detection(name, skipped="series is empty or all missing")
    # a season baseline needs a majority of its seasons
    needed = {"previous": 1, "season": period * (seasons // 2 + 1),
              "median": window}[baseline]
    if values.notna().sum() <= needed:
        return Detection(name, skipped=f"history {int(values.notna().sum())} points <= "
                                       f"{needed} needed for a {baseline} baseline")
    base, what = _baseline(values, baseline, period, window, seasons)
    base = base.reindex(tested_index)
    current = values.reindex(tested_index)
    usable = base.notna() & current.notna()
    if not usable.any():
        return Detection(name, skipped=f"no point under test has a {baseline} baseline")

    magnitude = base.abs()
    lower = base - down * magnitude if down is not None else pd.Series(np.nan, index=base.index)
    upper = base + up * magnitude if up is not None else pd.Series(np.nan, index=base.index)
    # min_abs_change widens the band, so the band drawn is exactly what was tested
    if floor > 0:
        lower = np.minimum(lower, base - floor) if down is not None else lower
        upper = np.maximum(upper, base + floor) if up is not None else upper
    band = pd.DataFrame({"expected": base, "lower": lower, "upper": upper}).where(usable)

    findings = []
    for at in tested_index[usable.to_numpy()]:
        value, ref = float(current[at]), float(base[at])
        lo, hi = band.at[at, "lower"], band.at[at, "upper"]
        if down is not None and value < lo:
            pass
        elif up is not None and value > hi:
            pass
        else:
            continue
        change = value - ref
        if ref != 0:
            rel = change / abs(ref)
            moved = f"{abs(rel):.1%} {'above' if rel > 0 else 'below'}"
        else:
            rel = math.copysign(math.inf, change)
            moved = "up from 0" if change > 0 else "down from 0"
        limit = up if change > 0 else down
        findings.append(Finding(
            at=at, value=value, expected=ref,
            lower=None if math.isnan(lo) else float(lo),
            upper=None if math.isnan(hi) else float(hi),
            score=abs(rel),
            detail=f"[proportional] {_label(at)}: {fmt_number(value)} is {moved} {what} "
                   f"({fmt_number(ref)}); limit {'+' if change > 0 else '-'}{limit:.0%}"))
    return Detection(name, tuple(findings), band=band)


def _baseline(values: pd.Series, baseline: str, period: int, window: int,
              seasons: int) -> tuple[pd.Series, str]:
    if baseline == "previous":
        # the previous batch that has a value: one missing day should not blind the check
        return values.dropna().shift(1).reindex(values.index), "the previous point"
    if baseline == "median":
        prior = values.shift(1)
        med = prior.rolling(window, min_periods=window // 2 + 1).median()
        return med, f"the median of the previous {window} points"
    back = [_season_back(values, period * k) for k in range(1, seasons + 1)]
    if seasons == 1:
        base = back[0]
    else:
        # a majority of the seasons must be there, or one odd week would be the baseline
        stacked = pd.concat(back, axis=1)
        base = stacked.median(axis=1).where(stacked.notna().sum(axis=1) > seasons // 2)
    return base, _season_text(values.index, period, seasons)


def _season_back(values: pd.Series, steps: int) -> pd.Series:
    """Each point's value `steps` points back, by the calendar when the index is one."""
    if isinstance(values.index, pd.DatetimeIndex):
        step = _calendar_step(values.index)
        if step is None:
            return values.shift(steps)
        shifted = values.reindex(values.index - step * steps)
    elif isinstance(values.index, pd.RangeIndex) or pd.api.types.is_integer_dtype(values.index):
        shifted = values.reindex(values.index - steps)
    else:
        return values.shift(steps)
    shifted.index = values.index
    return shifted


def _season_text(index: pd.Index, period: int, seasons: int) -> str:
    step = _calendar_step(index) if isinstance(index, pd.DatetimeIndex) else None
    if step == pd.Timedelta(days=1) and period == 7:
        same, unit = "the same weekday", "week"
    elif step == pd.Timedelta(hours=1) and period == 24:
        same, unit = "the same hour", "day"
    elif step is not None:
        same, unit = "the same point", f"{period} x {_step_text(step)}"
    else:
        same, unit = "the same point", f"{period} points"
    if seasons == 1:
        if unit in ("week", "day"):
            return f"{same} {'yesterday' if unit == 'day' else 'last week'}"
        return f"{same} {unit} before"
    return f"the median of {same} over the last {seasons} " + \
        (f"{unit}s" if unit in ("week", "day") else f"seasons of {unit}")


def _calendar_step(index: pd.DatetimeIndex) -> pd.Timedelta | None:
    freq = index.freq or (pd.tseries.frequencies.to_offset(pd.infer_freq(index))
                          if len(index) >= 3 else None)
    if freq is not None:
        try:
            return pd.Timedelta(freq)
        except (TypeError, ValueError):
            pass  # a calendar frequency such as month-end has no fixed length
    if len(index) < 2:
        return None
    # the typical spacing; asi8's unit depends on the index's resolution, Timedelta's doesn't
    gaps = pd.Series(index.sort_values()).diff()
    gaps = gaps[gaps > pd.Timedelta(0)]
    if gaps.empty:
        return None
    return gaps.median()


def _step_text(step: pd.Timedelta) -> str:
    if step == pd.Timedelta(days=1):
        return "1 day"
    if step == pd.Timedelta(hours=1):
        return "1 hour"
    return str(step)


def _as_series(series: Any) -> pd.Series:
    if not isinstance(series, pd.Series):
        raise ValueError(f"series: expected a pandas Series, got {type(series).__name__}")
    if not series.index.is_monotonic_increasing:
        series = series.sort_index()
    if series.index.has_duplicates:
        raise ValueError("series: duplicated index labels")
    try:
        return series.astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"series: expected numbers: {exc}") from None


def _label(at: Any) -> str:
    if isinstance(at, pd.Timestamp):
        return at.strftime("%Y-%m-%d") if at == at.normalize() else at.isoformat()
    return str(at)
