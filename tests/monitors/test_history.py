"""The history a partition is judged on: everything up to it, at most 26 weeks back, the
same in a daily run and in a backfill."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from monitors.judge.evaluate import HISTORY_DAYS, MetricHistory, history_since

TODAY = dt.date(2026, 11, 23)


def frame(rows: list[tuple[dt.date, str | None, str, str, float]]) -> pd.DataFrame:
    data = pd.DataFrame(rows, columns=["partition", "column", "metric", "key", "value"])
    data["partition"] = pd.to_datetime(data["partition"])
    return data


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def test_a_series_reaches_back_26_weeks_and_no_further():
    history = MetricHistory(frame([(days_ago(n), None, "row_count", "", float(n))
                                   for n in range(300)]), window_days=HISTORY_DAYS)
    series = history.series(None, "row_count", TODAY)
    assert len(series) == HISTORY_DAYS
    assert series.index[0] == pd.Timestamp(history_since(TODAY))
    assert series.index[-1] == pd.Timestamp(TODAY)
    # a backfill's earlier partition sees its own 26 weeks, as its daily run did
    earlier = history.series(None, "row_count", days_ago(100))
    assert (len(earlier), earlier.iloc[-1]) == (HISTORY_DAYS, 100.0)


def test_a_category_last_seen_over_26_weeks_ago_is_no_longer_known():
    rows = [(days_ago(n), "channel", "freq", "web", 10.0) for n in range(1, 250)]
    rows += [(days_ago(200), "channel", "freq", "fax", 1.0), (days_ago(100), "channel", "freq", "app", 2.0)]
    history = MetricHistory(frame(rows), window_days=HISTORY_DAYS)
    assert sorted(history.categories("channel", days_ago(1)).columns) == ["app", "other", "web"]
    assert "fax" in MetricHistory(frame(rows)).categories("channel", days_ago(1)).columns


def test_a_partition_landed_again_later_is_read_in_date_order():
    # a rerun that supersedes an old batch stores its metrics after newer partitions' rows
    rows = [(days_ago(n), None, "row_count", "", float(n)) for n in range(10, 0, -1) if n != 6]
    rows.append((days_ago(6), None, "row_count", "", 6.0))
    rows += [(d, "amount", m, "", v) for d, _, _, _, v in rows for m in ("p50", "mean")]
    history = MetricHistory(frame(rows), window_days=HISTORY_DAYS)
    series = history.series(None, "row_count", days_ago(1))
    assert list(series.index) == list(pd.date_range(days_ago(10), days_ago(1)))
    assert list(series) == [float(n) for n in range(10, 0, -1)]
    assert list(history.quantiles("amount", days_ago(1))["p50"]) == list(series)
    assert list(history.column_profile("amount", days_ago(1))["mean"]) == list(series)


def test_each_partition_of_a_backfill_sees_its_own_window_with_missing_days_as_gaps():
    rows = [(days_ago(n), "amount", m, "", float(n)) for n in range(60) if n % 9 != 4
            for m in ("p50", "mean")]
    history = MetricHistory(frame(rows), window_days=14)
    for n in (0, 13, 40):
        until = days_ago(n)
        series = history.series("amount", "p50", until)
        present = [k for k in range(n, n + 14) if k % 9 != 4]
        # from the window's first batch to the partition, one point a day, NaN where none
        assert series.index[0] == pd.Timestamp(days_ago(max(present)))
        assert series.index[-1] == pd.Timestamp(days_ago(min(present)))
        assert sorted(series.dropna()) == sorted(float(k) for k in present)
        assert series.isna().sum() == len(series) - len(present)
        assert sorted(history.quantiles("amount", until)["p50"]) == sorted(float(k) for k in present)
        assert sorted(history.column_profile("amount", until)["mean"].dropna()) == sorted(
            float(k) for k in present)
