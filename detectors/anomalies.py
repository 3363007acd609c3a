"""Seasonal-adjusted anomalies: the S-H-ESD family (seasonal hybrid extreme studentized
deviate), as Twitter's AnomalyDetection does it, with a trend that follows growth.

The series is split into season + trend + remainder. The season is periodic (one shape
repeated), the trend a rolling median over several periods, so that growth and slow
level changes are expected rather than anomalous. The remainder is tested with Rosner's
generalized ESD, using the median and the MAD instead of the mean and the standard
deviation, so that the anomalies being looked for do not hide themselves by inflating the
spread.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from detectors.result import Detection, Finding
from detectors.seasonal import MIN_CYCLES, find_period

NAME = "anomalies"
DIRECTIONS = ("both", "up", "down")
MIN_POINTS = 14
# the trend is a centred rolling median over this many seasonal periods: long enough that a
# burst of anomalies cannot drag it, short enough to follow growth
TREND_PERIODS = 16
# without a season the trend window is this fraction of the series (bounded below)
TREND_FRACTION = 0.1
MIN_TREND_WINDOW = 7
# anomalies with fewer normal points than this between them belong to one episode
EPISODE_GAP = 3
# the MAD of a normal sample is 0.6745 of its standard deviation
MAD_TO_SIGMA = 1.4826
# mean absolute deviation to sigma for a normal sample (sqrt(pi/2)); the fallback scale
# when more than half of the remainder is identical and the MAD is zero
MEAN_AD_TO_SIGMA = 1.2533


def detect_anomalies(series: pd.Series, *, period: int | None = None,
                     max_anoms: float = 0.002, alpha: float = 0.05,
                     direction: str = "both", since=None,
                     trend_window: int | None = None, episodes: bool = True) -> Detection:
    """Points whose seasonally and trend adjusted value is an extreme outlier.

    `period`: seasonal period in points (found from the index and autocorrelation when
    None). `max_anoms`: at most this fraction of the points under test is reported.
    `alpha`: the ESD test's significance level. `direction`: "both", "up" or "down".
    `since`: the first index label under test; earlier points are context only.
    `trend_window`: points in the trend's rolling median (default: sixteen periods, or a
    tenth of the series without a season). `episodes`: anomalies at most EPISODE_GAP
    points apart are one episode, reported once at its first point with its peak z (a
    burst is one thing to look at, and its start is when it began); False reports every
    anomalous point, as Twitter's package does.

    Why max_anoms defaults to 0.2% and not Twitter's 2%: real metrics have heavier tails
    than the normal law the ESD critical values assume, so on most of them the test runs
    up to its cap, and the cap becomes the alert budget. A run over today's batch alone
    (`since` = today) tests one point, and the cap does not bind.
    """
    _check_options(series, period, max_anoms, alpha, direction, trend_window)
    if not isinstance(episodes, bool):
        raise ValueError(f"episodes: expected True or False, got {episodes!r}")
    values = pd.to_numeric(series, errors="coerce").astype(float)
    values = values.where(np.isfinite(values))
    present = values.notna().to_numpy()
    tested = _under_test(series.index, since)

    n_present = int(present.sum())
    if len(values) == 0:
        return Detection(NAME, skipped="empty series")
    if n_present == 0:
        return Detection(NAME, skipped="every value is missing")
    if n_present < MIN_POINTS:
        return Detection(NAME, skipped=f"history {n_present} < {MIN_POINTS} points")
    if np.nanmin(values.to_numpy()) == np.nanmax(values.to_numpy()):
        return Detection(NAME, skipped="constant series")
    if not (tested & present).any():
        return Detection(NAME, skipped="no value under test")

    if period is None:
        period = find_period(values)
    elif len(values) < MIN_CYCLES * period:
        return Detection(NAME, skipped=f"history {len(values)} < {MIN_CYCLES * period} "
                                       f"points (two periods of {period})")
    x = values.interpolate(limit_direction="both").to_numpy()
    seasonal, trend = _decompose(x, period, trend_window)
    expected = seasonal + trend
    resid = np.where(present, x - expected, np.nan)

    flagged, centre, scale, critical = _esd(resid, tested & present, max_anoms, alpha,
                                            direction, _scale_floor(x))
    expected = expected + centre
    lower, upper = expected - critical * scale, expected + critical * scale
    band = pd.DataFrame({"expected": expected, "lower": lower, "upper": upper},
                        index=series.index)[tested]
    label = "seasonal" if period else "level"
    z = np.abs(resid - centre) / scale
    findings = []
    for run in _runs(sorted(flagged), EPISODE_GAP if episodes else 0):
        i = run[0]
        value = float(x[i])
        where = "above" if value > expected[i] else "below"
        peak = max(run, key=lambda j: z[j])
        detail = (f"[{label}] {_fmt(value)} {where} band [{_fmt(lower[i])}, "
                  f"{_fmt(upper[i])}] (z={z[i]:.1f})")
        if len(run) > 1:
            detail += (f"; first of {len(run)} anomalous points to {series.index[run[-1]]}, "
                       f"peak z={z[peak]:.1f}")
        findings.append(Finding(
            at=series.index[i], value=value, expected=float(expected[i]),
            lower=float(lower[i]), upper=float(upper[i]), score=float(z[peak]),
            detail=detail))
    return Detection(NAME, findings=tuple(findings), band=band)


# --- decomposition ----------------------------------------------------------------------

def _decompose(x: np.ndarray, period: int | None,
               trend_window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Periodic season and rolling-median trend.

    The season is each phase's median once a one-period rolling median is taken out: the
    shape a periodic STL finds, at a fraction of the cost, and as robust (a phase median
    ignores a minority of anomalies in that phase). The trend is then a rolling median of
    the deseasonalised series, centred: a burst of anomalies shorter than half the window
    cannot move it.
    """
    n = len(x)
    if period:
        rough = _rolling_median(x, period)
        phases = np.arange(n) % period
        profile = pd.Series(x - rough).groupby(phases).median().to_numpy()
        profile = profile - profile.mean()
        seasonal = profile[phases]
    else:
        seasonal = np.zeros(n)
    if trend_window is None:
        trend_window = (TREND_PERIODS * period if period
                        else max(MIN_TREND_WINDOW, int(TREND_FRACTION * n)))
    trend = _rolling_median(x - seasonal, min(trend_window, n))
    return seasonal, trend


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
    # at their middle point: reflect through that point, so a line stays a line
    edge = max(1, min(half // 2, (n - half) // 2)) | 1
    head_level = float(np.median(x[:edge]))
    tail_level = float(np.median(x[n - edge:]))
    reach = np.arange(1, half + 1)
    head = (2 * head_level - x[np.minimum(edge - 1 + reach, n - 1)])[::-1]
    tail = 2 * tail_level - x[np.maximum(n - edge - reach, 0)]
    padded = np.concatenate([head, x, tail])
    smooth = pd.Series(padded).rolling(window, center=True, min_periods=1).median().to_numpy()
    return smooth[len(head):len(head) + n]


def _runs(positions: list[int], gap: int) -> list[list[int]]:
    """Group sorted positions into runs whose neighbours are at most `gap` + 1 apart."""
    runs: list[list[int]] = []
    for i in positions:
        if runs and gap and i - runs[-1][-1] <= gap + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


# --- the test ---------------------------------------------------------------------------

def _esd(resid: np.ndarray, candidates: np.ndarray, max_anoms: float, alpha: float,
         direction: str, floor: float) -> tuple[list[int], float, float, float]:
    """Generalized ESD on median and MAD. Every present point is in the sample; only
    `candidates` may be removed as anomalies. Returns the anomalies, the remaining
    sample's centre and scale, and the critical z a point had to exceed."""
    sample = np.flatnonzero(~np.isnan(resid))
    n = len(sample)
    k = min(int(candidates.sum()), max(1, int(max_anoms * int(candidates.sum()))))
    keep = np.ones(n, dtype=bool)
    is_candidate = candidates[sample]
    values = resid[sample]
    removed: list[int] = []
    found = 0
    centre, scale = _centre_scale(values, floor)
    critical = _critical(n, 1, alpha, direction)
    for step in range(1, k + 1):
        centre, scale = _centre_scale(values[keep], floor)
        critical = _critical(n, step, alpha, direction)
        deviation = values - centre
        if direction == "up":
            strength = deviation
        elif direction == "down":
            strength = -deviation
        else:
            strength = np.abs(deviation)
        strength = np.where(keep & is_candidate, strength, -np.inf)
        worst = int(np.argmax(strength))
        if not np.isfinite(strength[worst]):
            break
        removed.append(worst)
        keep[worst] = False
        if strength[worst] / scale > critical:
            # Rosner's rule: the number of anomalies is the last step whose statistic
            # beats its critical value, even if some step between did not
            found = step
    flagged = removed[:found]
    if found < len(removed):
        # the band describes the sample with only the anomalies taken out
        rest = np.ones(n, dtype=bool)
        rest[flagged] = False
        centre, scale = _centre_scale(values[rest], floor)
        critical = _critical(n, found + 1, alpha, direction)
    return [int(sample[i]) for i in flagged], centre, scale, critical


def _centre_scale(values: np.ndarray, floor: float) -> tuple[float, float]:
    centre = float(np.median(values))
    spread = np.abs(values - centre)
    scale = MAD_TO_SIGMA * float(np.median(spread))
    if scale <= floor:
        scale = MEAN_AD_TO_SIGMA * float(spread.mean())
    return centre, max(scale, floor)


def _critical(n: int, step: int, alpha: float, direction: str) -> float:
    """Rosner's lambda_i for the step-th extreme of a sample of n."""
    left = n - step + 1
    if left < 3:
        return math.inf
    tail = alpha / left if direction != "both" else alpha / (2 * left)
    t = stats.t.ppf(1 - tail, left - 2)
    return float((left - 1) * t / math.sqrt((left - 2 + t * t) * left))


def _scale_floor(x: np.ndarray) -> float:
    # below a millionth of the series' own range, a deviation is rounding, not an anomaly
    span = float(np.nanmax(x) - np.nanmin(x))
    return max(span * 1e-6, np.finfo(float).tiny)


# --- options and input ------------------------------------------------------------------

def _check_options(series, period, max_anoms, alpha, direction, trend_window) -> None:
    if not isinstance(series, pd.Series):
        raise ValueError(f"series: expected a pandas Series, got {type(series).__name__}")
    if period is not None and (isinstance(period, bool) or not isinstance(period, (int, np.integer))
                               or period < 2):
        raise ValueError(f"period: expected an integer >= 2 or None, got {period!r}")
    if isinstance(max_anoms, bool) or not isinstance(max_anoms, (int, float)) \
            or not 0 < max_anoms <= 0.49:
        raise ValueError(f"max_anoms: expected a fraction in (0, 0.49], got {max_anoms!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a probability in (0, 1), got {alpha!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: expected one of {', '.join(DIRECTIONS)}, got {direction!r}")
    if trend_window is not None and (isinstance(trend_window, bool)
                                     or not isinstance(trend_window, (int, np.integer))
                                     or trend_window < 3):
        raise ValueError(f"trend_window: expected an integer >= 3 or None, got {trend_window!r}")


def _under_test(index: pd.Index, since) -> np.ndarray:
    if since is None:
        return np.ones(len(index), dtype=bool)
    if isinstance(index, pd.DatetimeIndex):
        try:
            start = pd.Timestamp(since)
            if index.tz is not None and start.tz is None:
                start = start.tz_localize(index.tz)
            return np.asarray(index >= start)
        except (TypeError, ValueError) as error:
            raise ValueError(f"since: not comparable with a DatetimeIndex: {since!r}") from error
    try:
        return np.asarray(index >= since)
    except TypeError as error:
        raise ValueError(f"since: not comparable with the series' index: {since!r}") from error


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
