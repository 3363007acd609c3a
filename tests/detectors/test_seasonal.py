"""Seasonality: the period found from the index and the data, and the season taken out."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.seasonal import find_period, find_periods, seasonal_adjust


def daily(values, start="2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D"))


def weekly_metric(days=365, seed=0, growth=0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekday = np.array([1.0, 1.05, 1.1, 1.05, 1.0, 0.7, 0.6])[t % 7]
    return 1000 * (1 + growth * t / days) * weekday * (1 + rng.normal(0, 0.02, days))


def intraday(days=14, per_day=24, seed=0, weekend=0.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=days * per_day,
                          freq=pd.Timedelta(days=1) / per_day)
    t = np.arange(len(index))
    values = 50 + 10 * np.sin(2 * np.pi * t / per_day) + rng.normal(0, 1, len(index))
    values += weekend * (index.day_of_week >= 5)
    return pd.Series(values, index=index)


# --- the period -------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_daily_data_with_a_weekly_pattern_has_period_seven(seed):
    assert find_period(daily(weekly_metric(seed=seed))) == 7


@pytest.mark.parametrize("per_day", [24, 288, 1440])
def test_intraday_data_has_a_daily_period(per_day):
    days = 3 if per_day == 1440 else 8
    assert find_period(intraday(days=days, per_day=per_day)) == per_day


def test_monthly_data_has_a_yearly_period():
    rng = np.random.default_rng(3)
    index = pd.date_range("2015-01-01", periods=60, freq="MS")
    values = 100 + 20 * np.sin(2 * np.pi * np.arange(60) / 12) + rng.normal(0, 2, 60)
    assert find_period(pd.Series(values, index=index)) == 12


def test_a_weekly_season_on_top_of_a_daily_one_is_found_second():
    assert find_periods(intraday(days=28, weekend=15.0)) == (24, 168)
    # a day that repeats identically all week is no weekly season
    assert find_periods(intraday(days=28)) == (24,)


@pytest.mark.parametrize("make", [
    lambda rng: rng.normal(0, 1, 400),                    # white noise
    lambda rng: np.cumsum(rng.normal(0, 1, 400)),         # a random walk wanders, no season
    lambda rng: 5 + 0.1 * np.arange(400) + rng.normal(0, 1, 400),   # growth alone
])
def test_no_season_gives_none(make):
    rng = np.random.default_rng(1)
    assert find_period(daily(make(rng))) is None


def test_too_few_cycles_give_none():
    assert find_period(daily(weekly_metric(days=10))) is None


def test_a_range_index_finds_its_period_from_the_autocorrelation():
    t = np.arange(600)
    rng = np.random.default_rng(2)
    series = pd.Series(10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, 600))
    assert find_period(series) == 12


@pytest.mark.parametrize("values", [[], [np.nan] * 30, [3.0] * 30])
def test_nothing_to_find_in_empty_missing_or_constant_series(values):
    assert find_period(daily(values)) is None


# --- the adjustment ---------------------------------------------------------------------

def test_the_adjusted_series_has_no_weekly_pattern_left_but_keeps_growth():
    series = daily(weekly_metric())
    out = seasonal_adjust(series, 7)
    assert list(out.columns) == ["observed", "seasonal", "trend", "resid", "adjusted"]
    assert out.index.equals(series.index)
    weekday_means = out["adjusted"].groupby(out.index.day_of_week).mean()
    raw_means = series.groupby(series.index.day_of_week).mean()
    assert weekday_means.std() < 0.1 * raw_means.std()
    # growth stays in the adjusted series: the last quarter is well above the first
    assert out["adjusted"].iloc[-90:].mean() > 1.2 * out["adjusted"].iloc[:90].mean()
    np.testing.assert_allclose(out["adjusted"], out["observed"] - out["seasonal"])
    np.testing.assert_allclose(out["resid"],
                               out["observed"] - out["seasonal"] - out["trend"])


def test_missing_points_stay_missing_but_get_a_season_and_trend():
    values = weekly_metric(days=120)
    values[[10, 11, 12, 50]] = np.nan
    out = seasonal_adjust(daily(values), 7)
    assert out["adjusted"].isna().sum() == 4 and out["resid"].isna().sum() == 4
    assert out[["seasonal", "trend"]].notna().all().all()


def test_two_periods_use_mstl_and_remove_both_seasons():
    series = intraday(days=28, weekend=15.0)
    out = seasonal_adjust(series, (24, 168))
    assert out["resid"].std() < 1.5  # the noise is 1; both seasons are gone
    assert out["adjusted"].groupby(series.index.day_of_week >= 5).mean().diff().abs().iloc[-1] < 2


def test_no_period_means_no_season():
    series = daily(np.arange(50.0))
    out = seasonal_adjust(series, None)
    assert (out["seasonal"] == 0).all()
    np.testing.assert_allclose(out["adjusted"], series)
