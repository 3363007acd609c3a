"""Seasonal-adjusted anomalies: the S-H-ESD family (seasonal hybrid extreme studentized
deviate), as Twitter's AnomalyDetection does it, with a trend that follows growth.

The series is split into season + trend + remainder. The season is periodic (one shape
repeated every cycle), the trend a rolling median over several cycles, so that growth and
slow level changes are expected rather than anomalous. A series whose season scales with
its level is split in logs. The remainder is tested with Rosner's generalized ESD, on the
median and the MAD instead of the mean and the standard deviation, so that the anomalies
looked for cannot hide by inflating the spread.

The remainder is tested at two scales: each point (a spike), and a short centred median
of the remainder (an excursion that lasts, whose points are each unremarkable: a sensor
stuck a little high, a slow leak). Anomalies close together are one episode, reported
once, at its start.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from detectors._rules import (
    check_choice,
    check_flag,
    check_integer,
    check_number,
    under_test,
)
from detectors.numbers import fmt_number
from detectors.result import Detection, Finding
from detectors.seasonal import MIN_CYCLES, find_periods, seasonal_adjust

NAME = "anomalies"
DIRECTIONS = ("both", "up", "down")
TRENDS = ("rolling", "median")
SEASONALS = ("median", "stl")
MIN_POINTS = 14
# the trend is a centred rolling median over this many seasonal periods: long enough that a
# burst of anomalies cannot drag it, short enough to follow growth
TREND_PERIODS = 16
# without a season the trend window is this fraction of the series (bounded below)
TREND_FRACTION = 0.1
MIN_TREND_WINDOW = 15
# the level at each end of the trend is the median of at least this many points
MIN_EDGE = 5
# the cap on anomalies is max_anoms of the points under test, but never below this: a
# fraction of a short history (a year of daily points) would otherwise allow one or none
MIN_BUDGET = 3
# the sustained test reports a window only when its median is this many point sigmas off
SUSTAINED_FLOOR = 1.0
# anomalies with fewer normal points than this between them belong to one episode
EPISODE_GAP = 3
# the gap is also at least this fraction of the points under test, so that one incident
# seen at fine sampling (a 5-minute series flickering around its band for an hour) is one
# episode (most monitored series have no season to scale the gap by). 0.3%: 30 points of
# 10,000. Chosen out of fold on NAB (bench/detection.py --cv): it was picked for every
# left-out category, and cut false positives 127 -> 109 at the same window recall.
EPISODE_LENGTH_FRACTION = 0.003
# an episode is the series' habit, not an anomaly, when at least RECURRENCE earlier episodes
# of its history reach RECURRENCE_RATIO of its peak z (a CPU metric that spikes to the same
# height every few hours; a feed with a burst every Monday). The ESD test alone cannot tell:
# on a heavy-tailed remainder it runs to its cap, so every series would get its budget of
# alerts, the habitual spikes included. Only earlier episodes count: a run over today's
# batch asks whether the past has seen as much, and a first incident is always news.
# 3 and 1.0 (as far off, not nearly): chosen out of fold on NAB (bench/detection.py --cv,
# searched 0/3/5 and 0.9/1.0), in every left-out category but one. 0: off.
RECURRENCE = 3
RECURRENCE_RATIO = 1.0
# persistence: an episode made of lone points (no window of the sustained test in it) is a
# spike, and is reported only when its peak z is at least SPIKE_MARGIN times the test's
# critical z; a level change that lasts is reported at the critical z. 1: off. A lone
# point just over the line is the commonest false alarm of a heavy-tailed metric.
SPIKE_MARGIN = 1.0
# persistence by count: an episode is reported only once it holds at least PERSISTENCE
# anomalous points (spikes or windows of the sustained test); a lone point outlier waits
# for a second. 1: off (every episode).
PERSISTENCE = 1
# an alert budget: after an alert, none for the next ALERT_BUDGET_FRACTION of the series'
# points (one alert per window: a series flapping for a day is one incident to read, not
# ten). 0: off.
ALERT_BUDGET_FRACTION = 0.0
# the MAD of a normal sample is 0.6745 of its standard deviation
MAD_TO_SIGMA = 1.4826
# mean absolute deviation to sigma for a normal sample (sqrt(pi/2)); the fallback scale
# when more than half of the remainder is identical and the MAD is zero
MEAN_AD_TO_SIGMA = 1.2533


def detect_anomalies(series: pd.Series, *, period: int | None = None,
                     max_anoms: float = 0.02, alpha: float = 0.05,
                     direction: str = "both", since=None, trend: str = "rolling",
                     trend_window: int | None = None, seasonal: str = "median",
                     relative: bool | None = None, episodes: bool = True,
                     sustained: bool = True, min_change: float = 0.0) -> Detection:
    """Points whose seasonally and trend adjusted value is an extreme outlier.

    `period`: the seasonal period in points; when None, up to two periods are found from
    the index and the autocorrelation (none: no season). `max_anoms`: at most this
    fraction of the points under test is anomalous (at least MIN_BUDGET may be).
    `alpha`: the ESD test's significance level. `direction`: "both", "up" or "down".
    `since`: the first index label under test; earlier points are context only.
    `trend`: "rolling" (a rolling median, so growth is expected) or "median" (one level
    for the whole series, as Twitter's package does). `trend_window`: points in the
    rolling median (default sixteen periods, or a tenth of the series without a season).
    `seasonal`: "median" (each phase's median; fast and robust) or "stl" (robust STL with
    a periodic window, MSTL for two seasons, as Twitter's package does; slower).
    `relative`: judge the series in logs, where a season and noise that scale with the
    level become additive (None: when the series is positive and its season fits better
    as a factor; False: never, as Twitter's package). `episodes`: anomalies at most
    EPISODE_GAP points (or 0.3% of the points under test) apart are one episode, reported
    once at its first point with its peak z, and an episode the series has made
    RECURRENCE times before is its habit and not reported; False reports every anomalous
    point. `sustained`: also test short centred
    medians of the remainder. `min_change`: a practical-significance floor, the smallest
    departure from expected (a fraction of it) worth reporting; a statistically clear but
    tiny move (a count 3% above its band on a quiet week) is not an incident.

    Why max_anoms defaults to 2% (Twitter's own default) with episodes on: real metrics
    have heavier tails than the normal law the ESD critical values assume, so the test
    runs up to its cap, and the cap becomes the alert budget. What keeps that budget from
    becoming false alarms is the habit rule (RECURRENCE): an episode the series' history
    has already made three times, as far off, is not reported. Chosen out of fold on NAB
    (bench/detection.py --cv): 0.2% without the rule scored 54 out of fold, 2% with it 72.
    A run over today's batch alone (`since` = today) tests one point, and the cap does
    not bind.
    """
    _check_options(series, period, max_anoms, alpha, direction, trend, trend_window,
                   seasonal, relative, episodes, sustained, min_change)
    values = pd.Series(pd.to_numeric(pd.Series(series.to_numpy()), errors="coerce")
                       .astype(float).to_numpy(), index=series.index)
    values = values.where(np.isfinite(values))
    present = values.notna().to_numpy()
    tested = under_test(series.index, since)
    if not series.index.is_monotonic_increasing:
        # a history handed over in any order is judged in time order
        series = series.sort_index(kind="stable")
        values = values.sort_index(kind="stable")
        present = values.notna().to_numpy()
        tested = under_test(series.index, since)
    reason = _unjudgeable(values, present, tested)
    if reason:
        return Detection(NAME, skipped=reason)
    fit = _fit(values, present, tested, period, max_anoms, alpha, direction, trend,
               trend_window, seasonal, relative, sustained)
    if isinstance(fit, str):
        return Detection(NAME, skipped=fit)
    x, periods, relative, fitted, resid = fit.x, fit.periods, fit.relative, fit.fitted, fit.resid
    spikes, centre, scale, critical, lasting = (fit.spikes, fit.centre, fit.scale,
                                                fit.critical, fit.lasting)
    candidates = tested & present

    back = np.exp if relative else (lambda v: v)
    expected = back(fitted + centre)
    lower = back(fitted + centre - critical * scale)
    upper = back(fitted + centre + critical * scale)
    band = pd.DataFrame({"expected": expected, "lower": lower, "upper": upper},
                        index=series.index)[tested]

    label = "seasonal" if periods else "level"
    z = np.abs(resid - centre) / scale
    strength = {i: lasting.z[i] for i in lasting.found} | {i: z[i] for i in spikes}
    findings = []
    gap = max(EPISODE_GAP, round(EPISODE_LENGTH_FRACTION * int(candidates.sum())))
    # every point's z at either scale, context included: what the series' history has done
    history = z if lasting.z is None else np.fmax(z, lasting.z)
    budget_gap = round(ALERT_BUDGET_FRACTION * len(x))
    lasting_found = set(lasting.found)
    last_alert = None
    for run in _runs(sorted(strength), gap if episodes else 0):
        i = run[0]
        peak = max(strength[j] for j in run)
        if episodes and RECURRENCE and _recurrences(history, run, peak, gap) >= RECURRENCE:
            continue
        if (episodes and SPIKE_MARGIN > 1 and lasting_found.isdisjoint(run)
                and peak < SPIKE_MARGIN * critical):
            continue
        if episodes and len(run) < PERSISTENCE:
            continue
        if episodes and budget_gap and last_alert is not None and i - last_alert <= budget_gap:
            continue
        value = float(x[i])
        if min_change and _departure(i, i in spikes, value, expected[i], lasting, relative) < min_change:
            continue
        if i in spikes:
            where = "above" if value > expected[i] else "below"
            detail = (f"[{label}] {fmt_number(value)} {where} band [{fmt_number(lower[i])}, "
                      f"{fmt_number(upper[i])}] (z={z[i]:.1f})")
        else:
            off = lasting.offset[i]
            where = "above" if off > 0 else "below"
            by = f"{abs(math.expm1(off)):.1%}" if relative else fmt_number(abs(off))
            detail = (f"[{label}, {lasting.width}-point median] {fmt_number(value)}, with the "
                      f"points around it {by} {where} expected (z={lasting.z[i]:.1f})")
        if len(run) > 1:
            detail += (f"; first of {len(run)} anomalous points up to "
                       f"{series.index[run[-1]]}, peak z={peak:.1f}")
        findings.append(Finding(
            at=series.index[i], value=value, expected=float(expected[i]),
            lower=float(lower[i]), upper=float(upper[i]), score=float(peak),
            detail=detail))
        last_alert = i
    return Detection(NAME, findings=tuple(findings), band=band)


@dataclass(frozen=True)
class _Fit:
    """The series split into expected and remainder, and what the tests found in it:
    everything a detection needs before its findings are grouped and filtered."""
    x: np.ndarray
    periods: tuple[int, ...]
    relative: bool
    fitted: np.ndarray
    resid: np.ndarray
    spikes: list[int]
    centre: float
    scale: float
    critical: float
    lasting: _Lasting


def _fit(values, present, tested, period, max_anoms, alpha, direction, trend, trend_window,
         seasonal, relative, sustained) -> _Fit | str:
    """The decomposition and the tests (the costly part); a str is why the series is
    skipped."""
    if period is None:
        periods = find_periods(values)
    elif len(values) < MIN_CYCLES * period:
        return f"history {len(values)} < {MIN_CYCLES * period} points (two periods of {period})"
    else:
        periods = (period,)

    x = values.interpolate(limit_direction="both").to_numpy()
    positive = bool((x > 0).all())
    if relative is None:
        # a season that scales with the level (a weekday factor on a growing count) comes
        # with noise that scales too: in logs both are additive
        relative = bool(periods) and positive and _scales_with_level(x, min(periods))
    elif relative and not positive:
        return "relative: the series has values <= 0, no logs"
    y = np.log(x) if relative else x
    season = _season(y, periods, seasonal)
    fitted = season + _trend(y - season, periods, trend, trend_window)
    resid = np.where(present, y - fitted, np.nan)

    floor = _scale_floor(y)
    candidates = tested & present
    spikes, centre, scale, critical = _esd(resid, candidates, max_anoms, alpha, direction,
                                           floor)
    lasting = (_sustained(resid, candidates, scale, max_anoms, alpha, direction, floor)
               if sustained else _Lasting())

    return _Fit(x, periods, relative, fitted, resid, spikes, centre, scale, critical, lasting)


def _departure(i: int, spike: bool, value: float, expected: float, lasting: _Lasting,
               relative: bool) -> float:
    """How far a finding is from expected, as a fraction of expected."""
    if spike:
        return abs(value - expected) / abs(expected) if expected else math.inf
    offset = lasting.offset[i]
    if relative:
        return abs(math.expm1(offset))
    return abs(offset) / abs(expected) if expected else math.inf


def _recurrences(history: np.ndarray, run: list[int], peak: float, gap: int) -> int:
    """How many earlier episodes of the series (before `run`) reach RECURRENCE_RATIO of
    `peak`."""
    high = np.flatnonzero(np.nan_to_num(history) >= RECURRENCE_RATIO * peak)
    high = high[high < run[0] - gap - 1]
    if not len(high):
        return 0
    # separate episodes: more than `gap` points apart
    return 1 + int((np.diff(high) > gap + 1).sum())


def _unjudgeable(values: pd.Series, present: np.ndarray, tested: np.ndarray) -> str | None:
    n_present = int(present.sum())
    if len(values) == 0:
        return "empty series"
    if n_present == 0:
        return "every value is missing"
    if n_present < MIN_POINTS:
        return f"history {n_present} < {MIN_POINTS} points"
    if np.nanmin(values.to_numpy()) == np.nanmax(values.to_numpy()):
        return "constant series"
    if not (tested & present).any():
        return "no value under test"
    return None


@dataclass(frozen=True)
class _Lasting:
    """What the sustained test found: positions, and per point the window median's offset
    from expected and its z."""
    found: tuple[int, ...] = ()
    offset: np.ndarray | None = None
    z: np.ndarray | None = None
    width: int = 0


def _sustained(resid: np.ndarray, candidates: np.ndarray, point_scale: float,
               max_anoms: float, alpha: float, direction: str, floor: float) -> _Lasting:
    """ESD over centred rolling medians of the remainder: a median ignores a lone spike
    (the point test has it) but moves once most of its window is off."""
    n = len(resid)
    # the window grows with the history (sqrt n): as many windows as points in each, so
    # neither a long history nor a short one makes the test degenerate
    width = int(min(max(3, round(math.sqrt(n))), max(3, n // 4)))
    rolling = pd.Series(resid).rolling(width, center=True, min_periods=1)
    # near the ends and around gaps a window holds fewer points, so its median is
    # noisier: shrink it to the precision of a full window
    smooth = rolling.median().to_numpy() * np.sqrt(rolling.count().to_numpy() / width)
    smooth = np.where(np.isnan(resid), np.nan, smooth)
    # a window off by less than the points' own spread is within what the trend's
    # uncertainty explains, above all at the ends, where a daily run tests
    large = np.abs(smooth - np.nanmedian(smooth)) >= SUSTAINED_FLOOR * point_scale
    found, centre, scale, _ = _esd(smooth, candidates & large, max_anoms, alpha,
                                   direction, floor / width)
    offset = smooth - centre
    return _Lasting(tuple(found), offset, np.abs(offset) / scale, width)


def _runs(positions: list[int], gap: int) -> list[list[int]]:
    """Group sorted positions into runs with at most `gap` points between neighbours."""
    runs: list[list[int]] = []
    for i in positions:
        if runs and gap and i - runs[-1][-1] <= gap + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


# --- decomposition ----------------------------------------------------------------------

def _season(x: np.ndarray, periods: tuple[int, ...], method: str) -> np.ndarray:
    """The periodic seasonal component (zero without a period).

    "median": each phase's median over every cycle, once a one-cycle rolling median (the
    rough level) is taken out. It is the shape a periodic STL finds, at a small fraction
    of the cost, and as robust: a phase median ignores a minority of anomalies in that
    phase. A second, longer season is fitted the same way on what the first leaves.
    """
    if not periods:
        return np.zeros(len(x))
    if method == "stl":
        return seasonal_adjust(pd.Series(x), periods if len(periods) > 1 else periods[0]
                               )["seasonal"].to_numpy()
    season = np.zeros(len(x))
    for period in sorted(periods):
        rest = x - season
        season = season + _phase_profile(rest - _rough_level(rest, period), period)
    return season


def _rough_level(x: np.ndarray, period: int) -> np.ndarray:
    # a full cycle in every window, so the season does not leak into this level; at the
    # ends, the first and last full cycles
    return (pd.Series(x).rolling(period, center=True, min_periods=period).median()
            .ffill().bfill().to_numpy())


def _scales_with_level(x: np.ndarray, period: int) -> bool:
    """Whether the seasonal shape fits better as a factor of the level than added to it.
    Judged on the mean, not the median, absolute remainder: an added shape that misfits
    only at the ends of a growing series must lose, though most points fit it."""
    rough = _rough_level(x, period)
    added = x - rough - _phase_profile(x - rough, period)
    scaled = x - rough - rough * _phase_profile(x / rough - 1, period)
    return bool(np.abs(scaled).mean() < np.abs(added).mean())


def _phase_profile(deviation: np.ndarray, period: int) -> np.ndarray:
    phases = np.arange(len(deviation)) % period
    profile = pd.Series(deviation).groupby(phases).median().to_numpy()
    # a cycle of the season sums to zero, so the level stays in the trend
    return (profile - profile.mean())[phases]


def _trend(x: np.ndarray, periods: tuple[int, ...], method: str,
           window: int | None) -> np.ndarray:
    if method == "median":
        return np.full(len(x), float(np.median(x)))
    if window is None:
        window = (TREND_PERIODS * max(periods) if periods
                  else max(MIN_TREND_WINDOW, int(TREND_FRACTION * len(x))))
    return _rolling_median(x, window)


def _rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    """Centred rolling median that follows growth up to the series' ends.

    A centred window is cut in half at the ends, and the median of a half window lags a
    growing series by a quarter window, which would make every last point of a growing
    metric look high (and the last point is the one a daily run tests). So the series is
    extended past each end by point reflection through the level there, which continues a
    straight line, and the full window is used everywhere.
    """
    n = len(x)
    window = max(1, min(window, n)) | 1  # odd: an even window's median sits half a step off
    half = window // 2
    if half == 0:
        return x.copy()
    # the level at each end is the median of its first (last) `edge` points, which sits
    # at their middle point: reflect through that point, so a line stays a line. Never
    # fewer than MIN_EDGE points: reflecting through the last point alone would make an
    # anomaly there (today's batch) its own expected value
    edge = min(max(MIN_EDGE, half // 2), n) | 1
    edge = min(edge, n if n % 2 else n - 1)
    head_level = float(np.median(x[:edge]))
    tail_level = float(np.median(x[n - edge:]))
    reach = np.arange(1, half + 1)
    head = (2 * head_level - x[np.minimum(edge - 1 + reach, n - 1)])[::-1]
    tail = 2 * tail_level - x[np.maximum(n - edge - reach, 0)]
    padded = np.concatenate([head, x, tail])
    smooth = pd.Series(padded).rolling(window, center=True, min_periods=1).median().to_numpy()
    return smooth[len(head):len(head) + n]


# --- the test ---------------------------------------------------------------------------

def _esd(resid: np.ndarray, candidates: np.ndarray, max_anoms: float, alpha: float,
         direction: str, floor: float) -> tuple[list[int], float, float, float]:
    """Generalized ESD on median and MAD. Every present point is in the sample; only
    `candidates` may be removed as anomalies. Returns the anomalies, the centre and scale
    of the sample without them, and the critical z the next point would have to beat."""
    sample = np.flatnonzero(~np.isnan(resid))
    n = len(sample)
    tested = int(candidates.sum())
    k = min(tested, max(MIN_BUDGET, int(max_anoms * tested)))
    critical = _critical(n, k + 1, alpha, direction)
    keep = np.ones(n, dtype=bool)
    open_ = candidates[sample].copy()
    values = resid[sample]
    removed: list[int] = []
    found = 0
    for step in range(1, k + 1):
        centre, scale = _centre_scale(values[keep], floor)
        deviation = values - centre
        if direction == "up":
            strength = deviation
        elif direction == "down":
            strength = -deviation
        else:
            strength = np.abs(deviation)
        strength = np.where(open_, strength, -np.inf)
        worst = int(np.argmax(strength))
        if not np.isfinite(strength[worst]):
            break
        removed.append(worst)
        keep[worst] = open_[worst] = False
        if strength[worst] / scale > critical[step - 1]:
            # Rosner's rule: the number of anomalies is the last step whose statistic
            # beats its critical value, even if some step between did not
            found = step
    flagged = removed[:found]
    rest = np.ones(n, dtype=bool)
    rest[flagged] = False
    centre, scale = _centre_scale(values[rest], floor)
    return [int(sample[i]) for i in flagged], centre, scale, float(critical[found])


def _centre_scale(values: np.ndarray, floor: float) -> tuple[float, float]:
    centre = float(np.median(values))
    spread = np.abs(values - centre)
    scale = MAD_TO_SIGMA * float(np.median(spread))
    if scale <= floor:
        scale = MEAN_AD_TO_SIGMA * float(spread.mean())
    return centre, max(scale, floor)


def _critical(n: int, steps: int, alpha: float, direction: str) -> np.ndarray:
    """Rosner's lambda_i for i = 1..steps in a sample of n (inf where too few are left)."""
    left = n - np.arange(steps, dtype=float)  # n - i + 1
    tail = alpha / left if direction != "both" else alpha / (2 * left)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stats.t.ppf(1 - tail, left - 2)
        lam = (left - 1) * t / np.sqrt((left - 2 + t * t) * left)
    return np.where(left >= 3, lam, np.inf)


def _scale_floor(x: np.ndarray) -> float:
    # below a millionth of the series' own range, a deviation is rounding, not an anomaly
    span = float(np.nanmax(x) - np.nanmin(x))
    return max(span * 1e-6, np.finfo(float).tiny)


# --- options --------------------------------------------------------------------------

def _check_options(series, period, max_anoms, alpha, direction, trend, trend_window,
                   seasonal, relative, episodes, sustained, min_change) -> None:
    if not isinstance(series, pd.Series):
        raise ValueError(f"series: expected a pandas Series, got {type(series).__name__}")
    check_integer(period, "period", ge=2, allow_none=True)
    check_number(max_anoms, "max_anoms", gt=0, le=0.49)
    check_number(alpha, "alpha", gt=0, lt=1)
    check_choice(direction, "direction", DIRECTIONS)
    check_choice(trend, "trend", TRENDS)
    check_integer(trend_window, "trend_window", ge=3, allow_none=True)
    if trend_window is not None and trend != "rolling":
        raise ValueError("trend_window: only applies to trend='rolling'")
    check_choice(seasonal, "seasonal", SEASONALS)
    check_flag(relative, "relative", allow_none=True)
    check_flag(episodes, "episodes")
    check_flag(sustained, "sustained")
    check_number(min_change, "min_change", ge=0, lt=10)
