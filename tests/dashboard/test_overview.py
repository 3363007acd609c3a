"""The overview through AppTest from the entry point, on the demo's store."""
from __future__ import annotations

import datetime as dt
import json

import streamlit as st
from sqlalchemy import delete
from streamlit.testing.v1 import AppTest

from monitors.lifecycle import alerts as lifecycle, mutes
from store.models import Alert, utcnow
from tests.dashboard.apptest import ENTRY, open_page

OVERVIEW = "dashboard/views/overview.py"


def frame_with(at: AppTest, column: str):
    return next(df.value for df in at.dataframe if column in df.value.columns)


def test_the_overview_shows_health_counts_batches_and_runs(demo, app, sessions):
    open_page(app, OVERVIEW)
    with sessions() as session:
        unresolved = lifecycle.list_alerts(session, status=["open", "acknowledged"])
    metrics = {m.label: m.value for m in app.metric}
    # one cause, one incident: the knock-on alerts are counted with their root, not again
    assert metrics["Open incidents"] == str(sum(a["status"] == "open" and a["caused_by"] is None
                                                for a in unresolved))
    caused = sum(a["caused_by"] is not None for a in unresolved)
    assert caused > 0
    assert any(f"and {caused} knock-on alert(s)" in c.value for c in app.caption)
    assert metrics["Muted"] == "0"
    health = frame_with(app, "health")
    assert sorted(health["dataset"]) == ["customer_snapshot", "model_outcomes", "model_scores"]
    # the data and the scores have critical alerts open (volume anomalies)
    assert set(health.set_index("dataset").loc[["customer_snapshot", "model_scores"], "health"]) == {"critical"}
    runs = frame_with(app, "requested_by")
    assert runs["status"].tolist()[0] == "succeeded"
    chart = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert {t["name"] for t in chart["data"]} == {"critical", "warning"}
    noisy = frame_with(app, "false_positive")
    assert noisy["alerts"].is_monotonic_decreasing


def test_batches_of_a_partition_tell_late_and_missing_apart(demo, app):
    open_page(app, OVERVIEW)
    app.date_input(key="overview.partition").set_value(dt.date(2026, 6, 26)).run()
    late = frame_with(app, "state").set_index("dataset")["state"]
    assert late["customer_snapshot"] == "late"
    app.date_input(key="overview.partition").set_value(dt.date(2026, 6, 27)).run()
    missing = frame_with(app, "state").set_index("dataset")["state"]
    assert missing["model_scores"] == "missing"
    assert missing["customer_snapshot"] == "arrived"
    # the model's outcomes of that day were due a week later: by today's clock, missing too
    assert any(f"1 arrived, {sum(missing == 'missing')} missing" in h.value for h in app.subheader)


def test_a_mute_moves_alerts_from_open_to_muted(demo, app, sessions):
    with sessions.begin() as session:
        mutes.add_mute(session, matchers={"dataset": "model_scores"}, reason="model retraining",
                       by="bob", ends_at=utcnow() + dt.timedelta(days=2), now=utcnow())
    open_page(app, OVERVIEW)
    with sessions() as session:
        scores = [a for a in lifecycle.list_alerts(session, status=["open", "acknowledged"])
                  if a["dataset"] == "model_scores"]
    assert {m.label: m.value for m in app.metric}["Muted"] == str(len(scores))
    health = frame_with(app, "health").set_index("dataset")
    assert health.loc["model_scores", "muted"] == len(scores)
    assert health.loc["model_scores", "open"] == 0


def test_an_empty_store_says_how_to_begin(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("MONITORS_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("MONITORS_DB_URL", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ENTRY), default_timeout=60).run()
    assert not at.exception
    assert "python -m monitors demo" in at.info[0].value


def test_datasets_without_alerts_are_healthy(demo, app, sessions):
    with sessions.begin() as session:
        session.execute(delete(Alert))
    open_page(app, OVERVIEW)
    health = frame_with(app, "health")
    assert set(health["health"]) == {"ok"}
    assert {m.label: m.value for m in app.metric}["Open incidents"] == "0"
    assert any("No alert fired" in c.value for c in app.caption)


def test_the_lineage_graph_draws_each_upstream_with_its_health(app, demo):
    """The demo's scores are built from the snapshot: the overview draws that arrow, and
    each dataset filled with its health."""
    from dashboard.charts import HEALTH_FILL
    from dashboard.services import health_frame

    open_page(app, "overview")
    [graph] = app.get("graphviz_chart")
    dot = graph.proto.spec
    assert '"customer_snapshot" -> "model_scores";' in dot
    for row in health_frame().itertuples():
        assert f'"{row.dataset}" [fillcolor="{HEALTH_FILL[row.health]}"' in dot


def test_health_counts_each_alert_once_its_knock_ons_under_caused(demo, app, sessions):
    open_page(app, OVERVIEW)
    with sessions() as session:
        unresolved = lifecycle.list_alerts(session, status=["open", "acknowledged"])
    health = frame_with(app, "health").set_index("dataset")
    for dataset, row in health.iterrows():
        mine = [a for a in unresolved if a["dataset"] == dataset]
        assert row["caused"] == sum(a["caused_by"] is not None for a in mine)
        assert row["open"] + row["acknowledged"] == sum(a["caused_by"] is None for a in mine)
    # the scores' volume drop is a knock-on of the snapshot's: counted there as caused only
    assert health.loc["model_scores", "caused"] > 0
    assert health[["open", "acknowledged", "caused"]].to_numpy().sum() == len(unresolved)
