"""Who acts survives opening an alert in a new tab: the table's `open ↗` link carries the
name, and the detail page it opens (a new session) is signed in with it. Before, the new
tab had forgotten the name and every action button was disabled."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.apptest import ENTRY, open_page, sign_in

ALERTS = "dashboard/views/alerts.py"
DETAIL = "dashboard/views/alert.py"


@pytest.fixture(autouse=True)
def _demo_alerts(demo):
    """The demo's real alerts."""


def test_the_detail_link_opens_a_tab_that_knows_who_you_are(app):
    sign_in(app, "Ana María")
    open_page(app, ALERTS, status="open")
    link = app.dataframe[0].value["detail"].iloc[0]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    assert query["who"] == "Ana María"

    new_tab = open_page(AppTest.from_file(str(ENTRY), default_timeout=60), DETAIL, **query)
    assert new_tab.sidebar.text_input(key="identity.input").value == "Ana María"
    acknowledge = new_tab.button(key="alert.ack")
    assert not acknowledge.disabled
    acknowledge.click().run()
    assert any("acknowledged" in m.value for m in new_tab.markdown)
    assert any("Ana María" in str(getattr(e, "value", "")) for e in new_tab.main)


def test_a_link_without_a_name_leaves_the_box_empty_and_actions_off():
    anonymous = open_page(AppTest.from_file(str(ENTRY), default_timeout=60), ALERTS,
                          status="open")
    link = anonymous.dataframe[0].value["detail"].iloc[0]
    assert "who=" not in link
    query = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
    new_tab = open_page(AppTest.from_file(str(ENTRY), default_timeout=60), DETAIL, **query)
    assert new_tab.button(key="alert.ack").disabled


def test_the_name_in_a_link_does_not_reset_the_alerts_filters(app):
    sign_in(app, "bo")
    open_page(app, ALERTS, status="acknowledged", who="bo")
    assert app.session_state["alerts.status"] == ["acknowledged"]
