"""Everyone looking sees the same truth: an alert acknowledged from the CLI or another
dashboard shows acknowledged in a tab opened afterwards (table and detail), and on the
detail page of a tab that was already open, at its next rerun. Before the triage views were
keyed by the store's state, both showed `open` for up to ten minutes."""
from __future__ import annotations

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from monitors.lifecycle import alerts as lifecycle
from tests.dashboard.apptest import ENTRY, ROOT, open_page, sign_in

ALERTS = "dashboard/views/alerts.py"
DETAIL = "dashboard/views/alert.py"


@pytest.fixture(autouse=True)
def _demo_alerts(demo):
    """The demo's real alerts."""


def second_tab() -> AppTest:
    """Another browser tab: its own session, the same server (the same caches)."""
    at = AppTest.from_file(str(ENTRY), default_timeout=60)
    sign_in(at, "bo")
    return at


def status_in_table(at: AppTest, alert_id: int) -> str | None:
    frame = at.dataframe[0].value
    rows = frame[frame["id"] == alert_id]
    return None if rows.empty else rows["status"].iloc[0]


def acknowledge_from_the_cli(alert_id: int, settings) -> None:
    done = subprocess.run([sys.executable, "-m", "monitors", "alerts", "ack", str(alert_id),
                           "--by", "carol"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_an_alert_acknowledged_from_the_cli_shows_acknowledged_in_a_tab_opened_after(
        app, settings, sessions):
    with sessions() as session:
        alert_id = lifecycle.list_alerts(session, status="open", limit=1)[0]["id"]
    open_page(app, ALERTS, status="open,acknowledged")
    assert status_in_table(app, alert_id) == "open"
    open_page(app, DETAIL, alert=str(alert_id))

    acknowledge_from_the_cli(alert_id, settings)

    fresh = open_page(second_tab(), ALERTS, status="open,acknowledged")
    assert status_in_table(fresh, alert_id) == "acknowledged"
    detail = open_page(second_tab(), DETAIL, alert=str(alert_id))
    assert any("acknowledged" in m.value for m in detail.markdown), "the new tab's detail page"
    # the tab already open on the detail page shows it at its next rerun
    app.run()
    assert any("acknowledged" in m.value for m in app.markdown), "the open tab's detail page"


def test_the_table_a_person_selects_from_stays_put_until_they_ask(app, settings, sessions):
    """The other side of the rule: rows do not shift under someone selecting them; the
    banner announces the change and the table follows when asked or after an action."""
    with sessions() as session:
        alert_id = lifecycle.list_alerts(session, status="open", limit=1)[0]["id"]
    open_page(app, ALERTS, status="open,acknowledged")
    acknowledge_from_the_cli(alert_id, settings)
    app.run()
    assert status_in_table(app, alert_id) == "open"
    del app.session_state["alerts.marker"]  # what "Show them in the table" and actions do
    app.run()
    assert status_in_table(app, alert_id) == "acknowledged"
