"""Incidents on the dashboard: a knock-on alert says which alert caused it, in the alerts
table and on its own page, on the demo's volume drop."""
from __future__ import annotations

import datetime as dt

from monitors.lifecycle import alerts as lifecycle
from tests.dashboard.apptest import open_page

ALERTS = "dashboard/views/alerts.py"
DETAIL = "dashboard/views/alert.py"


def knock_on(sessions) -> dict:
    with sessions() as session:
        found = lifecycle.list_alerts(session, now=dt.datetime.now(dt.UTC))
    return next(a for a in found if a["dataset"] == "model_scores"
                and a["monitor"] == "volume:anomalies" and a["caused_by"] is not None)


def test_the_alerts_table_says_what_caused_an_alert(demo, app, sessions):
    caused = knock_on(sessions)
    with sessions() as session:
        root = next(a for a in lifecycle.list_alerts(session) if a["id"] == caused["caused_by"])
    # filtered to the two alerts' datasets and monitors: on the unfiltered first page either
    # may be out of sight, depending on how many alerts the demo raises
    open_page(app, ALERTS, status="open,acknowledged,resolved",
              dataset=f"{caused['dataset']},{root['dataset']}",
              monitor=f"{caused['monitor']},{root['monitor']}")
    shown = next(df.value for df in app.dataframe if "monitor" in df.value.columns)
    by_id = dict(zip(shown["id"], shown["caused_by"], strict=True))
    assert by_id[caused["id"]] == f"caused by #{caused['caused_by']}"
    assert by_id[caused["caused_by"]] == ""  # the root


def test_a_caused_alerts_page_links_to_its_root(demo, app, sessions):
    caused = knock_on(sessions)
    open_page(app, DETAIL, alert=str(caused["id"]))
    links = [e for e in app.get("page_link") if f"caused by #{caused['caused_by']}" in e.proto.label]
    assert len(links) == 1
