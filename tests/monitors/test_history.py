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
