"""Seasonal-adjusted anomalies: seeded series with anomalies at known timestamps, series
that must stay quiet, the inputs that cannot be judged, and Twitter's reference answer."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import Detection, detect_anomalies
from tests.reference_data import shared_data


def daily(values, start="2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D"))


def weekly_metric(days=365, seed=0, growth=0.5, noise=0.02) -> np.ndarray:
    """A daily row count: weekly season (weekends low), growth, multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    weekday = np.array([1.0, 1.05, 1.1, 1.05, 1.0, 0.7, 0.6])[t % 7]
    return 1000 * (1 + growth * t / days) * weekday * (1 + rng.normal(0, noise, days))


def hourly_metric(days=42, seed=0) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-03-01", periods=days * 24, freq="h")
    t = np.arange(len(index))
    values = 200 + 0.05 * t + 40 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 4, len(t))
    return pd.Series(values, index=index)


def found_at(detection: Detection) -> list:
    # a skipped detection finds nothing too; quiet must mean judged and quiet
    assert detection.skipped is None, detection.skipped
    return [f.at for f in detection.findings]


# --- found where they are ---------------------------------------------------------------

@pytest.mark.parametrize("seed", range(5))
def test_spikes_and_dips_in_a_growing_weekly_series_are_found_on_their_day(seed):
    values = weekly_metric(seed=seed)
    rng = np.random.default_rng(100 + seed)
    days = np.sort(rng.choice(np.arange(30, 360), size=3, replace=False))
    values[days[0]] *= 1.5
    values[days[1]] *= 0.5
    values[days[2]] *= 1.4
    series = daily(values)

    at = found_at(detect_anomalies(series))

    assert set(series.index[days]) <= set(at)
    assert len(at) <= 4  # one more may pass, no more


def test_an_anomaly_on_a_weekend_counts_against_the_weekend_not_the_week():
    values = weekly_metric(seed=3)
    saturday = next(i for i in range(200, 210) if i % 7 == 5)
    values[saturday] = values[saturday - 1]  # a normal Friday's volume, on a Saturday
    series = daily(values)

    detection = detect_anomalies(series)

    assert series.index[saturday] in found_at(detection)
    finding = next(f for f in detection.findings if f.at == series.index[saturday])
    assert finding.value > finding.upper
    assert finding.expected == pytest.approx(values[saturday - 1] * 0.7 / 1.0, rel=0.1)
    assert finding.detail.startswith("[seasonal] ")
    assert " above band [" in finding.detail and "(z=" in finding.detail


def test_a_lasting_excursion_too_small_for_any_single_point_is_found_while_it_lasts():
    series = hourly_metric(seed=4)
    start = 24 * 30 + 5
    values = series.to_numpy().copy()
    values[start:start + 30] *= 1.04  # 4%: about two noise sigmas, for thirty hours
    series = pd.Series(values, index=series.index)

    assert not found_at(detect_anomalies(series, sustained=False))
    detection = detect_anomalies(series)
    at = found_at(detection)
    assert len(at) == 1
    # a centred median moves once most of its window is in the excursion: within its
    # first half, well before it ends
    assert series.index[start] <= at[0] <= series.index[start + 15]
    assert "-point median]" in detection.findings[0].detail


def test_a_burst_is_one_episode_at_its_first_point_unless_asked_for_every_point():
    series = hourly_metric(seed=5)
    values = series.to_numpy().copy()
    values[600:603] += 80
    series = pd.Series(values, index=series.index)

    episode = detect_anomalies(series)
    assert found_at(episode) == [series.index[600]]
    assert "first of 3 anomalous points" in episode.findings[0].detail
    every = detect_anomalies(series, episodes=False, sustained=False)
    assert found_at(every) == list(series.index[600:603])


def test_on_a_long_series_an_incident_flickering_around_its_band_is_one_episode():
    # 10,000 points; spikes 8 points apart are one incident seen at fine sampling, not three
    series = hourly_metric(days=420, seed=6)
    values = series.to_numpy().copy()
    values[[6000, 6008, 6016]] += 80
    series = pd.Series(values, index=series.index)

    detection = detect_anomalies(series)
    assert found_at(detection) == [series.index[6000]]
    assert "first of 3 anomalous points" in detection.findings[0].detail


@pytest.mark.parametrize("seed", range(3))
def test_a_spike_the_series_makes_every_few_days_becomes_its_habit_not_an_alert(seed):
    # the same +60 spike every third day: the first ones are news, then the series' habit;
    # a spike well past anything it has done before is still news
    series = hourly_metric(days=42, seed=seed)
    values = series.to_numpy().copy()
    habit = list(range(50, 960, 72))
    values[habit] += 60
    values[990] += 150
    series = pd.Series(values, index=series.index)

    at = set(found_at(detect_anomalies(series)))

    assert set(series.index[habit[:3]]) <= at
    assert series.index[990] in at
    # once the history holds three as large, a spike is reported only as a new record
    assert len(at & set(series.index[habit[-5:]])) <= 2
    # the rule scores episodes: asked for every anomalous point, every spike is one
    every = set(found_at(detect_anomalies(series, episodes=False, sustained=False)))
    assert set(series.index[habit + [990]]) <= every


def test_direction_limits_the_side():
    values = weekly_metric(seed=6)
    values[100] *= 1.6
    values[200] *= 0.4
    series = daily(values)
    assert found_at(detect_anomalies(series, direction="up")) == [series.index[100]]
    assert found_at(detect_anomalies(series, direction="down")) == [series.index[200]]


def test_missing_points_are_skipped_over_and_never_reported():
    values = weekly_metric(seed=7)
    values[[40, 41, 42, 150]] = np.nan
    values[120] *= 1.6
    series = daily(values)
    assert found_at(detect_anomalies(series)) == [series.index[120]]


def test_a_range_index_works_like_a_calendar():
    values = weekly_metric(seed=8)
    values[222] *= 1.5
    detection = detect_anomalies(pd.Series(values))
    assert found_at(detection) == [222]


def test_a_mostly_constant_series_still_flags_its_outlier():
    values = np.zeros(200)
    values[[20, 90]] = 1.0     # a few ones are normal here ...
    values[150] = 40.0         # ... forty is not
    assert found_at(detect_anomalies(daily(values), direction="up", sustained=False)) \
        [-1] == daily(values).index[150]


# --- quiet where nothing happened ------------------------------------------------------

@pytest.mark.parametrize("seed", range(10))
def test_a_clean_seasonal_series_with_growth_gives_nothing(seed):
    assert found_at(detect_anomalies(daily(weekly_metric(days=730, seed=seed, growth=1.0)))) == []


@pytest.mark.parametrize("seed", range(3))
def test_a_clean_hourly_series_with_growth_gives_nothing(seed):
    assert found_at(detect_anomalies(hourly_metric(seed=seed))) == []


def test_a_daily_causal_replay_of_a_growing_series_stays_quiet_to_the_last_day():
    # the last point is the one a daily run tests; a trend that lags growth there would
    # make every day of a growing metric look high
    series = daily(weekly_metric(days=300, seed=9, growth=1.5))
    for day in series.index[-60:]:
        assert found_at(detect_anomalies(series[:day], since=day)) == [], day


# --- since: today's batch and backfills -------------------------------------------------

def test_since_tests_only_the_points_from_it_on():
    values = weekly_metric(seed=10)
    values[[50, 300]] *= 1.6
    series = daily(values)
    since = series.index[250]

    detection = detect_anomalies(series, since=since)

    assert found_at(detection) == [series.index[300]]
    assert detection.band.index.equals(series.index[250:])
    assert list(detection.band.columns) == ["expected", "lower", "upper"]
    assert (detection.band["lower"] < detection.band["expected"]).all()
    assert (detection.band["expected"] < detection.band["upper"]).all()


def test_a_causal_replay_finds_the_anomaly_on_its_day_and_not_after():
    values = weekly_metric(seed=11)
    values[200] *= 1.5
    series = daily(values)
    fired = [day for day in series.index[190:215]
             if found_at(detect_anomalies(series[:day], since=day))]
    assert fired == [series.index[200]]


@pytest.mark.parametrize("days", [20, 60, 400])
def test_todays_anomaly_at_the_very_end_is_found_without_a_season_too(days):
    rng = np.random.default_rng(days)
    values = np.r_[100 + rng.normal(0, 2, days), 130.0]
    series = daily(values)
    assert found_at(detect_anomalies(series, since=series.index[-1])) == [series.index[-1]]


def test_a_history_in_any_order_is_judged_in_time_order():
    values = weekly_metric(seed=12)
    values[100] *= 1.6
    series = daily(values)
    shuffled = series.sample(frac=1.0, random_state=0)
    assert found_at(detect_anomalies(shuffled)) == found_at(detect_anomalies(series))


def test_a_timezone_aware_index_and_a_naive_since_work_together():
    values = weekly_metric(seed=13)
    values[[60, 300]] *= 1.6
    series = daily(values).tz_localize("UTC")
    assert found_at(detect_anomalies(series, since="2024-06-01")) == [series.index[300]]


def test_since_after_every_point_or_on_missing_points_only_is_skipped():
    series = daily(weekly_metric(days=60))
    assert detect_anomalies(series, since="2030-01-01").skipped == "no value under test"


# --- what cannot be judged --------------------------------------------------------------

@pytest.mark.parametrize("values, reason", [
    ([], "empty series"),
    ([np.nan] * 40, "every value is missing"),
    ([7.0] * 40, "constant series"),
    ([1.0, 2.0, 3.0, 2.0, 9.0], "history 5 < 14 points"),
    ([1.0, np.nan] * 10, "history 10 < 14 points"),
])
def test_series_that_cannot_be_judged_are_skipped_with_a_reason(values, reason):
    detection = detect_anomalies(daily(values))
    assert detection.skipped == reason
    assert detection.findings == () and not detection.fired


def test_an_explicit_period_longer_than_the_history_allows_is_skipped():
    detection = detect_anomalies(daily(weekly_metric(days=20)), period=14)
    assert detection.skipped == "history 20 < 28 points (two periods of 14)"


def test_judging_in_logs_needs_positive_values():
    values = weekly_metric(days=60) - 900
    detection = detect_anomalies(daily(values), relative=True)
    assert detection.skipped == "relative: the series has values <= 0, no logs"
    assert detect_anomalies(daily(values)).skipped is None


def test_an_empty_series_with_a_range_index_is_skipped_too():
    assert detect_anomalies(pd.Series([], dtype=float)).skipped == "empty series"


@pytest.mark.parametrize("options, option", [
    ({"period": 1}, "period"),
    ({"period": 7.5}, "period"),
    ({"period": True}, "period"),
    ({"max_anoms": 0}, "max_anoms"),
    ({"max_anoms": 0.5}, "max_anoms"),
    ({"max_anoms": "0.1"}, "max_anoms"),
    ({"alpha": 0}, "alpha"),
    ({"alpha": 1.0}, "alpha"),
    ({"alpha": float("nan")}, "alpha"),
    ({"direction": "pos"}, "direction"),
    ({"trend": "loess"}, "trend"),
    ({"trend_window": 2}, "trend_window"),
    ({"trend": "median", "trend_window": 30}, "trend_window"),
    ({"seasonal": "x11"}, "seasonal"),
    ({"relative": "auto"}, "relative"),
    ({"episodes": "yes"}, "episodes"),
    ({"sustained": 1}, "sustained"),
    ({"since": object()}, "since"),
])
def test_each_bad_option_raises_a_value_error_naming_it(options, option):
    with pytest.raises(ValueError, match=rf"^{option}\b"):
        detect_anomalies(daily(weekly_metric(days=60)), **options)


def test_a_series_that_is_not_a_series_raises():
    with pytest.raises(ValueError, match="^series"):
        detect_anomalies([1.0, 2.0, 3.0])


# --- Twitter's reference ----------------------------------------------------------------

@pytest.fixture(scope="module")
def twitter() -> pd.Series:
    frame = pd.read_csv(shared_data("twitter", "anomalydetection_raw_data.csv"),
                        parse_dates=["timestamp"], index_col="timestamp")
    return frame["count"]


TWITTER_STYLE = {"max_anoms": 0.02, "direction": "both", "relative": False,
                 "episodes": False, "sustained": False}


def test_twitter_reference_with_its_own_decomposition(twitter):
    """Twitter's package (periodic robust STL, one median level, ESD with max_anoms=0.02)
    finds 131 anomalies, 25 of them in the last day. Ours, given the same decomposition,
    finds exactly 131 and 25 here; the tolerance of 3% (and 2 in the last day) allows
    for STL's numerics differing between statsmodels and R's stl(), which moves points
    that sit right at the critical value."""
    detection = detect_anomalies(twitter, seasonal="stl", trend="median", **TWITTER_STYLE)
    at = found_at(detection)
    last_day = twitter.index[-1] - pd.Timedelta(days=1)
    assert abs(len(at) - 131) <= 4
    assert abs(sum(a > last_day for a in at) - 25) <= 2


def test_twitter_reference_with_our_decomposition(twitter):
    """Our default season (phase medians) with Twitter's single level finds a superset of
    the same points: 137, 25 in the last day. Our default rolling trend takes out the
    slow drift that Twitter leaves in the remainder, so the spread is smaller and more
    points pass (178, with 127 of those 131); that is the price of not calling growth
    an anomaly, so it is recorded, not asserted close."""
    reference = set(found_at(detect_anomalies(twitter, seasonal="stl", trend="median",
                                              **TWITTER_STYLE)))
    ours = set(found_at(detect_anomalies(twitter, trend="median", **TWITTER_STYLE)))
    assert reference <= ours
    assert len(ours) <= 1.1 * len(reference)
    rolling = set(found_at(detect_anomalies(twitter, **TWITTER_STYLE)))
    assert len(reference & rolling) >= 0.95 * len(reference)


def test_twitter_reference_last_day_only_with_since(twitter):
    """The last day tested alone, the earlier days as context: 25 in the reference."""
    since = twitter.index[-1] - pd.Timedelta(days=1)
    at = found_at(detect_anomalies(twitter, since=since, trend="median", **TWITTER_STYLE))
    assert abs(len(at) - 25) <= 2
    assert all(a >= since for a in at)


def test_min_change_drops_statistically_clear_but_tiny_departures():
    days = pd.date_range("2026-01-05", periods=84, freq="D")
    weekly = np.tile([1.0, 1.02, 1.03, 1.01, 0.97, 0.75, 0.7], 12)
    values = pd.Series(1000 * weekly, index=days) + np.random.default_rng(3).normal(0, 2, 84)
    values.iloc[60] *= 1.04   # 4% out: far outside a 0.2% noise band
    values.iloc[70] *= 0.5    # half the volume
    found = {f.at for f in detect_anomalies(values).findings}
    assert {days[60], days[70]} <= found
    floored = {f.at for f in detect_anomalies(values, min_change=0.1).findings}
    assert days[70] in floored and days[60] not in floored
    with pytest.raises(ValueError, match="^min_change"):
        detect_anomalies(values, min_change=-1)
