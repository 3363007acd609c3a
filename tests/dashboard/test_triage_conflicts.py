"""Two people triaging the same alert from two dashboards: the one acting on what changed
since their page loaded is told who changed it and when, on the page, not in a traceback."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from monitors.lifecycle import alerts as lifecycle
from store.engine import open_store
from store.models import Alert, AlertEvent
from tests.dashboard.apptest import open_page, plain

ALERTS = "dashboard/views/alerts.py"
DETAIL = "dashboard/views/alert.py"


@pytest.fixture(autouse=True)
def _demo_alerts(demo):
    """The demo's real alerts."""


def bo_resolves(settings, alert_id: int) -> None:
    """bo, on another dashboard (its own engine), resolves the alert."""
    engine, sessions = open_store(settings.db_url)
    with sessions.begin() as session:
        lifecycle.resolve(session, alert_id, by="bo", resolution="fixed")
    engine.dispose()


def open_ids(sessions) -> list[int]:
    with sessions() as session:
        return [a["id"] for a in lifecycle.list_alerts(session, status="open")]


def stored(sessions, alert_id: int) -> tuple[str, str | None, list[tuple[str, str]]]:
    with sessions() as session:
        alert = session.get(Alert, alert_id)
        kinds = [(e.kind, e.by) for e in session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id))]
    return alert.status, alert.resolution, kinds


def test_acknowledging_an_alert_resolved_since_the_page_loaded_says_who_resolved_it(
        app, settings, sessions):
    alert_id = open_ids(sessions)[0]
    open_page(app, DETAIL, alert=str(alert_id))
    bo_resolves(settings, alert_id)
    app.button(key="alert.ack").click().run()

    assert not app.exception
    assert any(f"alert {alert_id} was resolved (fixed) by bo at " in plain(e.value)
               and "since you loaded it (you saw it open)" in plain(e.value) for e in app.error), \
        [e.value for e in app.error]
    status, resolution, kinds = stored(sessions, alert_id)
    assert (status, resolution) == ("resolved", "fixed")
    assert ("acknowledged", "alice") not in kinds


def test_a_bulk_acknowledge_applies_to_the_unchanged_alerts_and_names_the_changed_one(
        app, settings, sessions):
    open_page(app, ALERTS)
    app.session_state["alerts.table"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    app.run()
    first, second = app.session_state["alerts.selected"]
    with sessions() as session:
        assert {session.get(Alert, i).status for i in (first, second)} == {"open"}
    bo_resolves(settings, first)
    app.button(key="alerts.ack").click().run()

    assert not app.exception
    assert "Acknowledged 1 alert(s) as alice" in app.success[0].value
    assert any(f"alert {first} was resolved (fixed) by bo at " in plain(e.value)
               for e in app.error), \
        [e.value for e in app.error]
    assert stored(sessions, first)[:2] == ("resolved", "fixed")
    assert stored(sessions, second)[0] == "acknowledged"
