"""Absolute and proportional thresholds on seeded daily metrics with known incidents."""
import numpy as np
import pandas as pd
import pytest

from detectors import absolute_threshold, proportional_threshold

DROP_DAY = pd.Timestamp("2024-03-13")  # a Wednesday


@pytest.fixture
def rows_per_day() -> pd.Series:
    """Daily row counts: weekends at half volume, 2% noise, slow growth, and one day
    (DROP_DAY) where 60% of the rows went missing."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    level = 10_000 * (1 + 0.002 * np.arange(len(days)))
    weekly = np.where(days.day_of_week >= 5, 0.5, 1.0)
    values = level * weekly * (1 + 0.02 * rng.standard_normal(len(days)))
    s = pd.Series(values, index=days, name="rows")
    s[DROP_DAY] *= 0.4
    return s


def test_season_baseline_flags_the_drop_and_not_the_weekly_dip(rows_per_day):
    det = proportional_threshold(rows_per_day, baseline="season", period=7,
                                 max_decrease=0.5, direction="down")
    assert [f.at for f in det.findings] == [DROP_DAY]
    (f,) = det.findings
    assert f.score == pytest.approx(0.6, abs=0.05)
    assert f.expected == pytest.approx(rows_per_day[DROP_DAY - pd.Timedelta(days=7)])
    assert f.lower == pytest.approx(f.expected * 0.5)
    assert "below the same weekday last week" in f.detail and "limit -50%" in f.detail


def test_previous_baseline_cries_wolf_every_weekend(rows_per_day):
    # the reason "season" exists: day-over-day, every Saturday is a 50% drop
    det = proportional_threshold(rows_per_day, baseline="previous", max_decrease=0.45,
                                 direction="down")
    saturdays = {f.at for f in det.findings if f.at.day_of_week == 5}
    assert len(saturdays) >= 15


def test_trailing_median_baseline(rows_per_day):
    weekdays = rows_per_day[rows_per_day.index.day_of_week < 5]
    det = proportional_threshold(weekdays, baseline="median", window=5, max_decrease=0.5)
    assert [f.at for f in det.findings] == [DROP_DAY]


def test_band_is_what_was_tested(rows_per_day):
    det = proportional_threshold(rows_per_day, baseline="season", max_increase=0.3,
                                 max_decrease=0.5)
    band = det.band.dropna()
    values = rows_per_day[band.index]
    outside = (values < band["lower"]) | (values > band["upper"])
    assert set(band.index[outside]) == {f.at for f in det.findings}
    assert list(band.columns) == ["expected", "lower", "upper"]


def test_since_limits_the_points_under_test(rows_per_day):
    det = proportional_threshold(rows_per_day, baseline="season", max_decrease=0.5,
                                 since="2024-03-14")
    assert DROP_DAY not in {f.at for f in det.findings}
    assert det.band.index.min() == pd.Timestamp("2024-03-14")


def test_missing_baseline_point_is_skipped(rows_per_day):
    s = rows_per_day.drop(DROP_DAY - pd.Timedelta(days=7))
    det = proportional_threshold(s, baseline="season", max_decrease=0.5, direction="down")
    assert DROP_DAY not in {f.at for f in det.findings}
    assert np.isnan(det.band.loc[DROP_DAY, "expected"])


def test_min_abs_change_keeps_tiny_bases_quiet():
    s = pd.Series([2.0, 3, 2, 5, 2, 3, 40], index=pd.RangeIndex(7))
    det = proportional_threshold(s, baseline="previous", max_increase=0.5, min_abs_change=10)
    assert [f.at for f in det.findings] == [6]
    # from zero, any move is infinite in relative terms; the floor decides
    z = pd.Series([0.0, 0.0, 4.0], index=pd.RangeIndex(3))
    assert not proportional_threshold(z, max_increase=0.5, min_abs_change=5).fired
    assert proportional_threshold(z, max_increase=0.5).findings[0].score == float("inf")


def test_default_limits_are_fifty_percent_both_ways():
    s = pd.Series([100.0, 100, 160, 100, 40], index=pd.RangeIndex(5))
    assert [f.at for f in proportional_threshold(s).findings] == [2, 4]


def test_short_history_and_empty_series_are_skipped():
    assert proportional_threshold(pd.Series([1.0, 2.0, 3.0]), baseline="season").skipped
    assert proportional_threshold(pd.Series([], dtype=float)).skipped
    assert proportional_threshold(pd.Series([np.nan, np.nan])).skipped
    assert absolute_threshold(pd.Series([], dtype=float), upper=1).skipped


def test_absolute_threshold():
    idx = pd.date_range("2024-01-01", periods=5, freq="D")
    null_fraction = pd.Series([0.001, 0.002, 0.03, np.nan, 0.0], index=idx)
    det = absolute_threshold(null_fraction, upper=0.01)
    (f,) = det.findings
    assert f.at == idx[2] and f.upper == 0.01 and f.lower is None
    assert f.score == pytest.approx(2.0)  # two bounds' worth beyond it
    assert "[absolute] 2024-01-03: 0.03 above the upper bound 0.01" == f.detail
    det = absolute_threshold(null_fraction, lower=0.0005, upper=0.01, since="2024-01-04")
    assert [f.at for f in det.findings] == [idx[4]]


@pytest.mark.parametrize("call, option", [
    (lambda s: absolute_threshold(s), "lower"),
    (lambda s: absolute_threshold(s, lower=5, upper=1), "lower"),
    (lambda s: absolute_threshold(s, upper=float("nan")), "upper"),
    (lambda s: absolute_threshold(s.to_list(), upper=1), "series"),
    (lambda s: proportional_threshold(s, baseline="weekly"), "baseline"),
    (lambda s: proportional_threshold(s, direction="sideways"), "direction"),
    (lambda s: proportional_threshold(s, period=0, baseline="season"), "period"),
    (lambda s: proportional_threshold(s, window=2.5, baseline="median"), "window"),
    (lambda s: proportional_threshold(s, max_increase=-0.1), "max_increase"),
    (lambda s: proportional_threshold(s, max_decrease=1.5), "max_decrease"),
    (lambda s: proportional_threshold(s, min_abs_change=-1), "min_abs_change"),
    (lambda s: proportional_threshold(s, max_decrease=0.5, direction="up"), "direction"),
    (lambda s: proportional_threshold(s, since="not a date"), "since"),
])
def test_bad_options_raise_value_error_naming_them(rows_per_day, call, option):
    with pytest.raises(ValueError, match=option):
        call(rows_per_day)


def test_several_seasons_keep_the_week_after_an_incident_quiet(rows_per_day):
    one = proportional_threshold(rows_per_day, baseline="season", max_increase=0.5,
                                 max_decrease=0.5)
    # with one season the recovery a week later is judged against the incident
    assert {f.at for f in one.findings} == {DROP_DAY, DROP_DAY + pd.Timedelta(days=7)}
    three = proportional_threshold(rows_per_day, baseline="season", seasons=3,
                                   max_increase=0.5, max_decrease=0.5)
    assert [f.at for f in three.findings] == [DROP_DAY]
    assert "the median of the same weekday over the last 3 weeks" in three.findings[0].detail


def test_hourly_season_is_the_same_hour_yesterday():
    index = pd.date_range("2024-01-01", periods=24 * 5, freq="h", tz="UTC")
    hourly = pd.Series(100.0 + 50 * (index.hour >= 9), index=index)
    hourly.iloc[-3] = 20.0
    det = proportional_threshold(hourly, baseline="season", period=24)
    (f,) = det.findings
    assert f.at == index[-3]
    assert "below the same hour yesterday (150)" in f.detail
