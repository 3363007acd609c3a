"""Explaining an alert for its chart (monitors.judge.explain): the series its monitor judged, the
band from the detector's own Detection, the points it fired on, the decomposition, and a
column's drift; the same detector and options a run uses."""
from __future__ import annotations

import pandas as pd

from monitors.config import load_config
from monitors.judge import explain
from monitors.lifecycle.alerts import get_alert, list_alerts


def first_alert(sessions, monitor: str, dataset: str = "customer_snapshot") -> dict:
    with sessions() as session:
        found = [a for a in list_alerts(session, monitor=monitor, dataset=dataset)]
        return get_alert(session, found[0]["id"])


def test_an_anomaly_alert_gets_its_band_and_the_point_it_fired_on(demo, sessions):
    document = first_alert(sessions, "volume:anomalies")
    with sessions() as session:
        history = explain.alert_history(session, load_config(demo.config_path), document)
    series, band = history["series"], history["band"]
    assert history["label"] == "row_count" and series.index.freq == "D"
    assert {"expected", "lower", "upper"} <= set(band.columns) and band["upper"].notna().any()
    fired = pd.Timestamp(document["partition"])
    assert fired in history["anomalies"].index
    assert "anomaly detector" in history["note"]
    parts = explain.decomposition(series)
    assert len(parts) == len(series)


def test_a_breakout_alert_marks_where_the_new_level_begins(demo, sessions):
    document = first_alert(sessions, "level:products_held")
    with sessions() as session:
        history = explain.alert_history(session, load_config(demo.config_path), document)
    assert history["label"] == "products_held · mean"
    assert history["band"] is None and history["breakouts"]
    assert all({"at", "before", "after"} <= set(b) for b in history["breakouts"])
    assert pd.Timestamp(document["evidence"]["breakout_at"]) in {
        pd.Timestamp(b["at"]) for b in history["breakouts"]}


def test_a_proportional_alert_gets_the_band_each_batch_was_tested_against(demo, sessions):
    document = first_alert(sessions, "nulls:income")
    with sessions() as session:
        history = explain.alert_history(session, load_config(demo.config_path), document)
    assert history["label"] == "income · null_fraction"
    assert history["band"]["upper"].notna().any() and history["note"].startswith("the band")


def test_a_drift_alert_is_explained_by_its_distance_not_by_a_metric_series(demo, sessions):
    """Issue 13 #4: its chart is the drift distance against the limit (drift_history)."""
    document = first_alert(sessions, "drift:score", "model_scores")
    with sessions() as session:
        history = explain.alert_history(session, load_config(demo.config_path), document)
    assert history["kind"] == explain.DRIFT and history["profile"] == "quantiles"
    assert "series" not in history


def test_a_contract_break_has_no_series_of_its_own(demo, sessions):
    document = first_alert(sessions, "contract")
    with sessions() as session:
        history = explain.alert_history(session, load_config(demo.config_path), document)
    assert history["kind"] == explain.CONTRACT and "series" not in history


def test_drift_is_judged_over_the_last_days_asked_for(demo, sessions):
    with sessions() as session:
        frame, measure, limit = explain.drift_history(
            session, load_config(demo.config_path), "model_scores", "score", "quantiles", days=10)
    assert measure == "PSI" and limit > 0
    assert len(frame) <= 10 and frame["exceeded"].any()
    assert frame.loc[frame["exceeded"], "detail"].str.len().gt(0).all()


def test_example_rows_hide_the_sensitive_columns():
    document = {"evidence": {"examples": [{"customer_id": "c-17", "income": -5.0}]},
                "sensitive": ["customer_id"]}
    examples = explain.masked_examples(document)
    assert examples["customer_id"].tolist() == [explain.MASK]
    assert examples["income"].tolist() == [-5.0]
    assert explain.masked_examples({"evidence": None}).empty
