"""Each alert is drawn with the evidence its monitor judged (issue 13 #4): a drift alert as
its distance against the limit, a new category as category shares, a late or missing batch as
arrival delays against the deadline, a contract break without a made-up series; metric
alerts keep their history with the band. Before, the first three were drawn on row counts
with the limit, in another unit, at 0."""
from __future__ import annotations

import json

import pytest

from monitors.lifecycle import alerts as lifecycle
from tests.dashboard.apptest import open_page

DETAIL = "dashboard/views/alert.py"


def first_alert(sessions, monitor: str) -> int:
    with sessions() as session:
        found = [a["id"] for a in lifecycle.list_alerts(session) if a["monitor"] == monitor]
    assert found, f"the demo raises {monitor}"
    return found[0]


def traces(app) -> list[str]:
    charts = app.get("plotly_chart")
    assert charts, "a chart is drawn"
    return [t.get("name") for t in json.loads(charts[0].proto.spec)["data"]]


@pytest.mark.parametrize("monitor, drawn, not_drawn", [
    ("drift:score", {"PSI"}, {"rows", "row_count"}),
    ("categories:channel", {"online", "partner_app"}, {"row_count"}),
    ("freshness:late", {"arrival delay (h)"}, {"row_count"}),
    ("freshness:missing", {"arrival delay (h)"}, {"row_count"}),
    ("volume:anomalies", {"row_count", "expected band"}, set()),
])
def test_the_chart_fits_the_evidence(app, demo, sessions, monitor, drawn, not_drawn):
    open_page(app, DETAIL, alert=str(first_alert(sessions, monitor)))
    names = set(traces(app))
    assert drawn <= names, names
    assert not (names & not_drawn), names
    # the seasonal decomposition is offered for a metric's history only
    assert bool([t for t in app.toggle if t.key == "alert.decompose"]) == (monitor == "volume:anomalies")


def test_bounds_in_another_unit_are_not_drawn_over_row_counts(app, demo, sessions):
    # a profile alert's bounds are in its metric's unit (a share, a mean): over the row counts
    # drawn for context they sat at 0, as "upper 0.73 / lower 0.61" on a chart of thousands
    open_page(app, DETAIL, alert=str(first_alert(sessions, "profile:income")))
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert "row_count" in {t.get("name") for t in spec["data"]}
    labels = [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    assert not [t for t in labels if t.startswith(("upper", "lower"))], labels


def test_a_contract_break_shows_its_reason_and_no_series(app, demo, sessions):
    open_page(app, DETAIL, alert=str(first_alert(sessions, "contract")))
    assert not app.get("plotly_chart")
    assert any("broke the dataset's contract" in c.value for c in app.caption)
