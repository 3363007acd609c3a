"""Moments are shown in the viewer's time zone, the zone named, not in UTC left for the
reader to convert (st.context.timezone is the browser's zone; AppTest has none, so the
tests set it)."""
from __future__ import annotations

import json

import pytest

from dashboard import times
from tests.dashboard.apptest import open_page


@pytest.fixture(autouse=True)
def _demo_alerts(demo):
    """The demo's real alerts and runs."""


@pytest.fixture
def tokyo(monkeypatch):
    monkeypatch.setattr(times.st.context.__class__, "timezone", property(lambda _: "Asia/Tokyo"))


def column_config(at, key: str) -> dict:
    frame = next(df for df in at.dataframe if df.proto.id.endswith(key) or key in df.proto.id)
    return json.loads(frame.proto.columns)


def test_the_alerts_table_shows_last_seen_in_the_viewers_zone(app, tokyo):
    open_page(app, "alerts", status="open,acknowledged")
    last_seen = column_config(app, "alerts.table")["last_seen_at"]
    assert last_seen["label"] == "last seen (Asia/Tokyo)"
    assert last_seen["type_config"]["timezone"] == "Asia/Tokyo"


def test_the_pipeline_says_the_next_run_in_the_viewers_zone(app, tokyo):
    open_page(app, "pipeline")
    assert any("Next scheduled run:" in c.value and c.value.split("(")[0].strip().endswith("JST")
               for c in app.caption), [c.value for c in app.caption]


def test_without_a_browser_zone_times_are_utc_and_say_so(app):
    open_page(app, "alerts", status="open,acknowledged")
    assert column_config(app, "alerts.table")["last_seen_at"]["label"] == "last seen (UTC)"


def test_an_unknown_zone_falls_back_to_utc(monkeypatch):
    monkeypatch.setattr(times.st.context.__class__, "timezone", property(lambda _: "Mars/Olympus"))
    assert times.viewer_zone() == "UTC"
