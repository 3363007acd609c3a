"""The datasets and model outputs pages in AppTest, on the demo's store (the `demo`
fixture) and on an empty one."""
from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import corrected_days
from tests.dashboard.apptest import open_page


def traces(chart) -> list[dict]:
    return json.loads(chart.proto.spec)["data"]


def values(trace: dict, axis: str = "y") -> list:
    """A trace's values; plotly ships numeric arrays as base64 typed arrays."""
    data = trace[axis]
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)




@pytest.mark.parametrize("page", ["datasets", "model_outputs"])
def test_an_empty_store_says_how_to_begin(app, page):
    open_page(app, page)
    assert "python -m monitors demo" in app.info[0].value


def test_a_columns_metric_is_charted_over_time(app, demo):
    open_page(app, "datasets")
    assert app.selectbox(key="datasets.pick").value == "customer_snapshot"
    # the page opens on the row count: 40 days, the quarantined one a gap in the line
    row_count = values(traces(app.get("plotly_chart")[0])[0])
    assert len(row_count) == 40 and np.isnan(row_count).sum() == 1
    app.selectbox(key="datasets.column").select("income").run()
    app.selectbox(key="datasets.metric").select("null_fraction").run()
    assert not app.exception
    nulls = values(traces(app.get("plotly_chart")[0])[0])
    # the demo's null spike on income (40% instead of 5%) stands out
    assert max(nulls) > 0.3 and sorted(nulls)[len(nulls) // 2] < 0.1


def test_category_shares_are_charted_for_freq(app, demo):
    open_page(app, "datasets")
    app.selectbox(key="datasets.column").select("channel").run()
    app.selectbox(key="datasets.metric").select("freq").run()
    names = {trace["name"] for trace in traces(app.get("plotly_chart")[0])}
    assert {"branch", "online", "mobile", "phone", "partner_app"} <= names


def test_schema_history_batches_and_freshness(app, demo):
    open_page(app, "datasets")
    frames = [frame.value for frame in app.dataframe]
    datasets, quarantined, batches, contract, schema, late_or_missing = frames
    assert set(datasets["dataset"]) == {"customer_snapshot", "model_scores", "model_outcomes"}
    assert "province" in contract["name"].tolist()
    # the rename of province to region broke the contract on one day: its own row, with the reason
    broken = schema[schema["status"] == "quarantined"]
    assert len(broken) == 1 and "unexpected column(s) region" in broken["reason"].iloc[0]
    assert schema["batches"].sum() == 40
    assert "region" in quarantined["reason"].iloc[0]
    # one batch a day, and one more for each day the upstream redelivered corrected
    corrected = corrected_days(demo.home)
    assert corrected
    assert len(batches) == 40 + len(corrected)
    per_day = batches["partition"].astype(str).value_counts()
    assert {day for day, n in per_day.items() if n > 1} == corrected
    late = late_or_missing[late_or_missing["state"] == "late"]
    assert late["delay_hours"].iloc[0] == pytest.approx(16, abs=0.1)
    # on time, late, and missing: the quarantined day left no batch in force
    assert [m.value for m in app.metric] == ["38", "1", "1"]


def test_a_missing_partition_shows_on_the_freshness_tab(app, demo):
    open_page(app, "datasets")
    app.selectbox(key="datasets.pick").select("model_scores").run()
    problems = app.dataframe[-1].value
    missing = problems[problems["state"] == "missing"]
    assert len(missing) == 1
    assert [m.value for m in app.metric][2] == "1"


def test_model_outputs_show_bands_class_mix_and_drift(app, demo):
    open_page(app, "model_outputs")
    assert app.selectbox(key="model_outputs.pick").value == "model_scores"
    bands, score_drift, mix, class_drift, *performance = app.get("plotly_chart")
    names = [trace["name"] for trace in traces(bands)]
    assert {"p05-p95", "p25-p75", "median"} <= set(names)
    assert {"buy", "no_buy"} <= {trace["name"] for trace in traces(mix)}
    # the scores drift upwards near the end of the span: those partitions are marked
    marked = next(t for t in traces(score_drift) if t["name"] == "over the limit")
    assert len(values(marked, "x")) >= 1
    drift_table = app.dataframe[0].value
    # and for the 3 days of the calibration break, when every score was pushed up
    incidents = json.loads((demo.home / "demo" / "incidents.json").read_text())
    broken = pd.Timestamp(next(i["partition"] for i in incidents if i["kind"] == "calibration_break"))
    in_break = (drift_table["partition"] >= broken) & (drift_table["partition"] < broken + pd.Timedelta(days=3))
    assert ((drift_table["partition"] >= "2026-06-20") | in_break).all()
    assert in_break.any()
    assert drift_table["detail"].str.contains("PSI|KS").all()
    assert traces(class_drift)


def test_long_series_are_thinned_on_the_server_keeping_their_spikes():
    import pandas as pd

    from dashboard.metric_charts import MAX_POINTS, downsample

    days = pd.date_range("2000-01-01", periods=20_000, freq="D")
    values = np.sin(np.arange(20_000) / 50.0)
    values[12_345], values[777] = 40.0, -40.0
    thinned = downsample(pd.DataFrame({"partition": days, "value": values}))
    assert len(thinned) <= MAX_POINTS
    assert thinned["value"].max() == 40.0 and thinned["value"].min() == -40.0
    assert thinned["partition"].is_monotonic_increasing


def test_counts_in_the_tables_are_whole_numbers(app, demo):
    """A quarantined batch has no row count; the others read 2959, not 2959.0."""
    open_page(app, "datasets")
    counted = [(df.value, column) for df in app.dataframe for column in ("rows", "columns")
               if column in df.value.columns]
    assert counted, "the batches and schema tables show counts"
    for frame, column in counted:
        assert str(frame[column].dtype) == "Int64", (column, frame[column].dtype)


def test_model_outputs_show_performance_per_version_and_a_reliability_diagram(app, demo):
    open_page(app, "model_outputs")
    charts = {json.loads(c.proto.spec)["layout"]["title"]["text"]: c for c in app.get("plotly_chart")}
    over_time = next(c for title, c in charts.items() if title.startswith("auc per partition"))
    names = {trace.get("name") for trace in traces(over_time)}
    # the rollout put v2 beside v1: both drawn, with all versions and the estimate's band
    assert {"all versions", "v1", "v2", "estimated", "estimate band"} <= names
    versions = next(df.value for df in app.dataframe if "model_version" in df.value.columns)
    assert set(versions["model_version"]) == {"v1", "v2"}
    assert versions.set_index("model_version").loc["v2", "first_partition"] > \
        versions.set_index("model_version").loc["v1", "first_partition"]
    # each version estimated on the partitions its labels have not reached yet
    assert versions["estimated_auc_awaiting_labels"].between(0.5, 1).all()
    assert any(title.startswith("Reliability on") for title in charts)
    app.selectbox(key="model_outputs.performance_metric").select("ece").run()
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in app.get("plotly_chart")]
    assert any(title.startswith("ece per partition") for title in titles)
