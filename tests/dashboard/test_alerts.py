"""Triage through AppTest from the entry point: the alerts table and its bulk actions, and
one alert's detail page with its actions, on the demo's real alerts."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from dashboard import services
from monitors.lifecycle import alerts as lifecycle
from monitors.pipeline import queue
from store.models import Alert, AlertEvent, MuteRule
from tests.dashboard.apptest import open_page, plain, sign_in

ALERTS = "dashboard/views/alerts.py"
DETAIL = "dashboard/views/alert.py"


@pytest.fixture(autouse=True)
def _demo_alerts(demo):
    """Every test here triages the demo's real alerts."""


def select_rows(at: AppTest, positions: list[int]) -> AppTest:
    at.session_state["alerts.table"] = {"selection": {"rows": positions, "columns": [], "cells": []}}
    return at.run()


def table(at: AppTest):
    return next(df.value for df in at.dataframe if "monitor" in df.value.columns
                and "partition" in df.value.columns and "message" in df.value.columns)


def alert(sessions, alert_id: int) -> Alert:
    with sessions() as session:
        return session.get(Alert, alert_id)


def events(sessions, alert_id: int) -> list[AlertEvent]:
    with sessions() as session:
        return list(session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id)
                                    .order_by(AlertEvent.id)))


# ---- the alerts page ------------------------------------------------------------------------

def test_the_table_lists_unresolved_alerts_last_seen_first(app, sessions):
    open_page(app, ALERTS)
    shown = table(app)
    with sessions() as session:
        # by default the table hides muted alerts and shows its first page
        expected = [a["id"] for a in lifecycle.list_alerts(session, status=["open", "acknowledged"],
                                                           include_muted=False)]
    assert shown["id"].tolist() == expected[:services.PAGE_SIZE]
    assert set(shown["status"]) <= {"open", "acknowledged"}
    assert any(f"{len(expected)} alert(s) match" in c.value for c in app.caption)


def test_acknowledging_a_selection_signs_the_event_with_the_name(app, sessions):
    open_page(app, ALERTS)
    chosen = table(app)["id"].tolist()[:2]
    select_rows(app, [0, 1])
    assert "#" + str(chosen[0]) in " ".join(c.value for c in app.caption)
    app.button(key="alerts.ack").click().run()
    assert not app.exception
    for alert_id in chosen:
        assert alert(sessions, alert_id).status == "acknowledged"
        last = events(sessions, alert_id)[-1]
        assert (last.kind, last.by) == ("acknowledged", "alice")
    assert "Acknowledged 2 alert(s) as alice" in app.success[0].value
    # nothing stays ticked in the grid once the page says nothing is selected (the ticks
    # lived on in the browser under the same widget key)
    assert "Selected: 0" in [h.value for h in app.subheader]
    assert app.session_state["alerts.table.1"]["selection"]["rows"] == []


def test_bulk_resolve_records_the_resolution(app, sessions):
    open_page(app, ALERTS)
    chosen = table(app)["id"].tolist()[:3]
    select_rows(app, [0, 1, 2])
    app.selectbox(key="alerts.resolution").set_value("false_positive")
    app.text_input(key="alerts.note").input("known upstream replay")
    app.button(key="alerts.resolve").click().run()
    assert not app.exception
    for alert_id in chosen:
        resolved = alert(sessions, alert_id)
        assert (resolved.status, resolved.resolution) == ("resolved", "false_positive")
        assert events(sessions, alert_id)[-1].note == "false_positive: known upstream replay"
    # resolved alerts leave the default view (open and acknowledged)
    assert not set(chosen) & set(table(app)["id"])


# the level shift's alert stays open (the volume drop's resolves once redelivered corrected)
def _open_mute_dialog(app) -> list[int]:
    open_page(app, ALERTS, dataset="customer_snapshot", monitor="level:products_held")
    chosen = table(app)["id"].tolist()
    assert chosen
    select_rows(app, list(range(len(chosen))))
    app.button(key="alerts.mute").click().run()
    assert not app.exception
    # scope from the selection: what every selected alert shares
    assert app.text_input(key="alerts.mute.dataset").value == "customer_snapshot"
    assert app.text_input(key="alerts.mute.monitor").value == "level:products_held"
    assert app.text_input(key="alerts.mute.column").value == "products_held"
    return chosen


def test_a_mute_without_an_end_time_is_refused_and_stores_nothing(app, sessions):
    _open_mute_dialog(app)
    app.text_input(key="alerts.mute.reason").input("upstream outage, ticket 42")
    app.button(key="alerts.mute.save").click().run()
    assert any("needs an end time" in e.value for e in app.error)
    with sessions() as session:
        assert session.scalars(select(MuteRule)).all() == []


def test_a_mute_with_an_end_time_is_stored_and_hides_its_alerts(app, sessions):
    chosen = _open_mute_dialog(app)
    # the preview lists what the mute would cover before anything is stored
    preview = next(df.value for df in app.dataframe if list(df.value.columns)[:2] == ["id", "dataset"]
                   and "status" in df.value.columns and "occurrences" not in df.value.columns)
    assert set(chosen) <= set(preview["id"])
    app.text_input(key="alerts.mute.reason").input("upstream outage, ticket 42")
    app.date_input(key="alerts.mute.end_date").set_value(dt.date.today() + dt.timedelta(days=3))
    app.button(key="alerts.mute.save").click().run()
    assert not app.exception
    with sessions() as session:
        stored = session.scalars(select(MuteRule)).one()
        assert stored.matchers == {"dataset": "customer_snapshot", "column": "products_held",
                                   "monitor": "level:products_held"}
        assert stored.created_by == "alice"
        listed = {a["id"]: a["muted"] for a in lifecycle.list_alerts(session)}
    assert all(listed[i] for i in chosen)
    assert "Mute 1 stored" in app.success[0].value
    # muted alerts are behind the toggle
    assert not set(chosen) & set(table(app)["id"])
    app.toggle(key="alerts.show_muted").set_value(True).run()
    assert set(chosen) <= set(table(app)["id"])


def test_a_deep_link_fills_the_filters(app):
    open_page(app, ALERTS, status="open", dataset="model_scores", severity="critical")
    assert app.multiselect(key="alerts.dataset").value == ["model_scores"]
    shown = table(app)
    assert not shown.empty
    assert set(shown["dataset"]) == {"model_scores"}
    assert set(shown["severity"]) == {"critical"}


def test_pages_are_cut_in_sql_and_never_overlap(app, monkeypatch):
    from dashboard import services

    monkeypatch.setattr(services, "PAGE_SIZE", 5)
    open_page(app, ALERTS, status="open,acknowledged,resolved")
    first = table(app)["id"].tolist()
    assert len(first) == 5
    app.number_input(key="alerts.page").set_value(2).run()
    second = table(app)["id"].tolist()
    assert len(second) == 5 and not set(first) & set(second)


def test_new_alerts_are_announced_without_reloading_the_table(app):
    open_page(app, ALERTS)
    assert not app.warning
    app.session_state["alerts.baseline"] = 10  # as if alerts 11.. arrived after the load
    app.run()
    assert "new alert(s) since this table was loaded" in app.warning[0].value


def test_acting_needs_a_name(app):
    sign_in(app, "")
    open_page(app, ALERTS)
    select_rows(app, [0])
    assert app.button(key="alerts.ack").disabled
    assert any("Enter your name" in c.value for c in app.caption)


def test_a_viewer_browses_but_cannot_act(app, settings, sessions):
    (settings.home / "roles.yaml").write_text("alice: viewer\nbob: operator\n")
    open_page(app, ALERTS)
    select_rows(app, [0])
    assert app.button(key="alerts.ack").disabled
    assert app.button(key="alerts.resolve").disabled
    assert any("viewer" in c.value for c in app.caption)
    alert_id = int(table(app)["id"].iloc[0])
    app.query_params["alert"] = str(alert_id)
    app.switch_page(DETAIL).run()
    assert app.button(key="alert.ack").disabled
    assert app.button(key="alert.rerun").disabled


# ---- one alert ------------------------------------------------------------------------------

def _alert_id(sessions, monitor: str, dataset: str = "customer_snapshot") -> int:
    with sessions() as session:
        return next(a["id"] for a in lifecycle.list_alerts(session, monitor=monitor, dataset=dataset))


def test_the_deep_link_opens_that_alert_with_its_band_and_anomaly(app, sessions):
    alert_id = _alert_id(sessions, "volume:anomalies")
    open_page(app, DETAIL, alert=str(alert_id))
    assert f"#{alert_id} · customer_snapshot · volume:anomalies" in plain(app.subheader[0].value)
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    names = [trace.get("name") for trace in spec["data"]]
    assert {"expected band", "alert fired", "row_count"} <= set(names)
    assert spec["layout"]["xaxis"]["type"] == "date"
    timeline = next(df.value for df in app.dataframe if "kind" in df.value.columns)
    assert "opened" in timeline["kind"].tolist()


def test_a_breakout_is_drawn_with_its_levels(app, sessions):
    alert_id = _alert_id(sessions, "level:products_held")
    evidence = alert(sessions, alert_id).evidence
    # the demo's level shift holds one more product from its day on
    assert evidence["after"] - evidence["before"] == pytest.approx(1, abs=0.1)
    open_page(app, DETAIL, alert=str(alert_id))
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    shapes = spec["layout"].get("shapes", [])
    assert any(s.get("type") == "line" and s.get("yref") == "y domain" for s in shapes)
    levels = f"breakout: {evidence['before']:.4g} → {evidence['after']:.4g}"
    assert levels in [a.get("text") for a in spec["layout"]["annotations"]]
    app.toggle(key="alert.decompose").set_value(True).run()
    assert not app.exception
    assert len(app.get("plotly_chart")) == 2


def test_acknowledge_comment_and_resolve_from_the_detail_page(app, sessions):
    alert_id = _alert_id(sessions, "nulls:income")
    open_page(app, DETAIL, alert=str(alert_id))
    app.button(key="alert.ack").click().run()
    assert alert(sessions, alert_id).status == "acknowledged"
    app.text_input(key="alert.note").input("income feed replayed at 09:00")
    app.button(key="alert.comment").click().run()
    assert app.text_input(key="alert.note").value == "", "a note is used once"
    # typed, then Resolve clicked without Comment: the note goes with the resolution
    # (it was lost before: the comment box was a separate form)
    app.text_input(key="alert.note").input("replay confirmed with the feed's owner")
    app.selectbox(key="alert.resolution").set_value("fixed")
    app.button(key="alert.resolve").click().run()
    assert not app.exception
    kinds = [(e.kind, e.by, e.note) for e in events(sessions, alert_id)]
    assert ("acknowledged", "alice", None) in kinds
    assert ("commented", "alice", "income feed replayed at 09:00") in kinds
    assert ("resolved", "alice", "fixed: replay confirmed with the feed's owner") in kinds
    # the fix did not hold: the resolved alert is reopened from the same page
    app.text_input(key="alert.note").input("nulls back at 11:00")
    app.button(key="alert.reopen").click().run()
    assert alert(sessions, alert_id).status == "open"
    assert ("reopened", "alice", "nulls back at 11:00") in [
        (e.kind, e.by, e.note) for e in events(sessions, alert_id)]


def test_the_rerun_button_queues_a_run_of_the_partition(app, sessions):
    alert_id = _alert_id(sessions, "freshness:late")
    open_page(app, DETAIL, alert=str(alert_id))
    app.button(key="alert.rerun").click().run()
    assert not app.exception
    with sessions() as session:
        run = queue.list_runs(session, status="queued")[0]
        partition = alert(sessions, alert_id).partition.isoformat()
    assert (run["dataset"], run["partition_from"], run["partition_to"]) == (
        "customer_snapshot", partition, partition)
    assert run["requested_by"] == "alice" and run["trigger"] == "manual"
    assert events(sessions, alert_id)[-1].note == f"run {run['id']}"
    assert any(f"Rerun {run['id']}: **queued**" in i.value for i in app.info)


def test_mute_similar_stores_a_mute_for_that_monitor(app, sessions):
    alert_id = _alert_id(sessions, "volume:anomalies", dataset="model_scores")
    open_page(app, DETAIL, alert=str(alert_id))
    app.button(key="alert.mute_similar").click().run()
    app.text_input(key="alert.mute.reason").input("scores follow the snapshot; muted there")
    app.button(key="alert.mute.save").click().run()
    assert any("needs an end time" in e.value for e in app.error)
    app.date_input(key="alert.mute.end_date").set_value(dt.date.today() + dt.timedelta(days=1))
    app.button(key="alert.mute.save").click().run()
    assert not app.exception
    with sessions() as session:
        stored = session.scalars(select(MuteRule)).one()
    assert stored.matchers == {"dataset": "model_scores", "monitor": "volume:anomalies"}
    assert alert_id in [a["id"] for a in _listed(sessions) if a["muted"]]


def _listed(sessions):
    with sessions() as session:
        return lifecycle.list_alerts(session)


def test_evidence_rows_mask_sensitive_columns(app, sessions):
    alert_id = _alert_id(sessions, "nulls:income")
    with sessions.begin() as session:
        session.get(Alert, alert_id).evidence = {
            "examples": [{"customer_id": 100234, "income": None, "age": 41}]}
    open_page(app, DETAIL, alert=str(alert_id))
    rows = next(df.value for df in app.dataframe if "customer_id" in df.value.columns)
    assert rows["customer_id"].tolist() == ["••••"]
    assert rows["age"].tolist() == [41]


def test_an_unknown_alert_says_so(app):
    open_page(app, DETAIL, alert="99999")
    assert "no alert #99999" in app.error[0].value


def test_the_muted_link_shows_only_muted_alerts(app, sessions):
    from monitors.lifecycle import mutes
    from store.models import utcnow

    with sessions.begin() as session:
        mutes.add_mute(session, matchers={"monitor": "level:*"}, reason="products feed rebuilt",
                       by="bob", ends_at=utcnow() + dt.timedelta(days=1), now=utcnow())
        muted = {a["id"] for a in lifecycle.list_alerts(session, status=["open", "acknowledged"])
                 if a["muted"]}
    assert muted
    open_page(app, ALERTS, status="open,acknowledged", muted="only")
    assert set(table(app)["id"]) == muted
    assert set(table(app)["muted"]) == {"muted"}


# ---- the alert chart, without Streamlit -----------------------------------------------------

def test_a_long_history_is_thinned_on_the_server_but_keeps_spikes_and_the_alert():
    import numpy as np
    import pandas as pd

    from dashboard import charts

    index = pd.date_range("2020-01-01", periods=20_000, freq="h")
    values = pd.Series(np.sin(np.arange(20_000) / 24), index=index)
    values.iloc[7_777] = 50.0      # a spike
    fired = values.iloc[[12_345]]  # the alert's own point, unremarkable in value
    figure = charts.metric_history(values, title="m", anomalies=fired)
    line = next(t for t in figure.data if t.name == "m")
    assert len(line.x) <= charts.MAX_POINTS + 2
    assert 50.0 in line.y
    assert float(charts.epoch_ms([index[12_345]])[0]) in line.x
    assert figure.layout.xaxis.type == "date"
    assert isinstance(line.x[0], float)  # epoch ms, a quarter of the JSON of datetimes
