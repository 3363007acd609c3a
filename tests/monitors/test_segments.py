"""A volume alert says where the rows went, from the stored category counts: a seeded
history where one province loses most of its rows names that province, a drop spread
evenly over every segment names none."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from monitors.judge.evaluate import MetricHistory, evaluate_metric
from monitors.judge.plan import MonitorSpec
from monitors.judge.segments import explain_volume

FIRST = dt.date(2026, 3, 2)
DAYS = 42
LAST = FIRST + dt.timedelta(days=DAYS - 1)
PROVINCES = {"MADRID": 400, "BARCELONA": 300, "VALENCIA": 200, "SEVILLA": 100}
CHANNELS = {"web": 0.5, "app": 0.3, "branch": 0.2}
VOLUME = MonitorSpec("volume:anomalies", "metric", "anomalies", "critical", metric="row_count",
                     options={"min_change": 0.1}, automatic=True)


def history(last_day_keeps: dict[str, float], seed: int = 11) -> MetricHistory:
    """Daily batches with ~2% noise per province; on the last day each province keeps the
    given fraction of its rows. Channels split every province's rows in fixed shares."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in range(DAYS):
        day = pd.Timestamp(FIRST + dt.timedelta(days=n))
        by_province = {p: round(size * rng.normal(1, 0.02)) for p, size in PROVINCES.items()}
        if n == DAYS - 1:
            by_province = {p: round(c * last_day_keeps.get(p, 1.0)) for p, c in by_province.items()}
        total = sum(by_province.values())
        rows.append((day, None, "row_count", "", float(total)))
        rows += [(day, "province", "freq", p, float(c)) for p, c in by_province.items()]
        rows += [(day, "channel", "freq", c, float(round(total * share)))
                 for c, share in CHANNELS.items()]
        rows += [(day, column, "freq_other", "", 0.0) for column in ("province", "channel")]
    return MetricHistory(pd.DataFrame(rows, columns=["partition", "column", "metric", "key", "value"]))


def test_a_segment_that_lost_its_rows_is_named_on_the_alert():
    metrics = history({"MADRID": 0.1})
    segment = explain_volume(metrics, LAST)
    assert (segment.column, segment.value) == ("province", "MADRID")
    assert segment.share > 0.9 and segment.rows < 0
    verdict = evaluate_metric(VOLUME, metrics, LAST)
    assert verdict.finding is not None, "a 36% drop in rows is a volume anomaly"
    assert "of the missing rows are province = MADRID" in verdict.finding.detail


def test_a_drop_spread_over_every_segment_names_none():
    metrics = history({p: 0.6 for p in PROVINCES})
    assert explain_volume(metrics, LAST) is None
    verdict = evaluate_metric(VOLUME, metrics, LAST)
    assert verdict.finding is not None and "rows are" not in verdict.finding.detail


def test_extra_rows_are_named_too():
    metrics = history({"SEVILLA": 4.0})
    segment = explain_volume(metrics, LAST)
    assert (segment.column, segment.value) == ("province", "SEVILLA")
    assert segment.sentence().endswith("of the extra rows are province = SEVILLA")
