"""Accepting a change as the new normal from the alert's page: the button, the marker on
the chart, and the undo."""
from __future__ import annotations

import json

import pytest

from tests.dashboard.apptest import open_page
from tests.dashboard.test_alerts import DETAIL, _alert_id, alert, events


@pytest.fixture(autouse=True)
def _demo_alerts(demo):
    """The demo's real alerts."""


def test_accept_draws_the_marker_and_withdraw_reopens(app, sessions):
    alert_id = _alert_id(sessions, "level:products_held")
    open_page(app, DETAIL, alert=str(alert_id))
    app.button(key="alert.accept").click().run()
    assert "Say in the Note why" in app.error[0].value, "an acceptance needs a reason"
    app.text_input(key="alert.note").input("new bundle launched")
    app.button(key="alert.accept").click().run()
    assert not app.exception
    accepted = alert(sessions, alert_id)
    assert (accepted.status, accepted.resolution) == ("resolved", "expected")
    assert any(e.by == "alice" and "new bundle launched" in (e.note or "")
               for e in events(sessions, alert_id))
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert any(a.get("text") == "new normal (alice)" for a in spec["layout"]["annotations"])

    app.button(key="alert.unaccept").click().run()
    assert not app.exception
    assert alert(sessions, alert_id).status == "open"
    spec = json.loads(app.get("plotly_chart")[0].proto.spec)
    assert not any(a.get("text") == "new normal (alice)" for a in spec["layout"]["annotations"])
