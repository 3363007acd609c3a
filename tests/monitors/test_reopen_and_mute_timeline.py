"""Two things an on-call engineer reads an alert's timeline for: that it was reopened by a
person (a resolution that did not hold), and that a mute now keeps it quiet. Before, a
resolved alert could not be reopened at all, and a mute left no trace on the alerts it
covered."""
from __future__ import annotations

import datetime as dt

import pytest

from monitors.errors import Refused
from monitors.lifecycle.alerts import get_alert, reopen, resolve
from monitors.lifecycle.mutes import add_mute
from tests.monitors.signals import NOW, alerts, day, fires, record, run_cli


def events(sessions, alert_id: int) -> list[tuple[str, str, str | None]]:
    with sessions() as session:
        return [(e["kind"], e["by"], e["note"])
                for e in get_alert(session, alert_id, now=NOW)["events"]]


def test_a_resolved_alert_is_reopened_by_a_person_with_a_reason(sessions, sales):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions.begin() as session:
        resolve(session, alert["id"], by="ana", resolution="fixed", now=NOW)
    with sessions.begin() as session:
        reopen(session, alert["id"], by="bo", note="the feed broke again at 10:00",
               now=NOW + dt.timedelta(hours=1))
    [again] = alerts(sessions)
    assert again["status"] == "open" and again["resolution"] is None
    assert events(sessions, alert["id"])[-1] == ("reopened", "bo",
                                                  "the feed broke again at 10:00")


def test_only_a_resolved_alert_can_be_reopened_and_a_refusal_changes_nothing(sessions, sales):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions.begin() as session, pytest.raises(Refused, match="only a resolved alert"):
        reopen(session, alert["id"], by="bo", now=NOW)
    assert alerts(sessions)[0]["status"] == "open"
    assert [kind for kind, _, _ in events(sessions, alert["id"])] == ["opened"]


def test_the_cli_reopens_and_says_so(settings, sessions, sales, capsys):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions.begin() as session:
        resolve(session, alert["id"], by="ana", resolution="expected", now=NOW)
    assert run_cli(settings, sessions, "alerts", "reopen", str(alert["id"]), "--by", "bo",
                   "--note", "not expected after all") == 0
    assert f"alert {alert['id']} reopened by bo" in capsys.readouterr().out
    assert alerts(sessions)[0]["status"] == "open"
    assert run_cli(settings, sessions, "alerts", "reopen", str(alert["id"]), "--by", "bo") == 2
    assert "only a resolved alert" in capsys.readouterr().err


def test_a_mute_is_on_the_timeline_of_each_alert_it_covers_and_no_other(sessions, sales):
    record(sessions, [fires(sales, day(0), monitor="amount_anomalies"),
                      fires(sales, day(0), monitor="rows_anomalies")])
    by_monitor = {a["monitor"]: a["id"] for a in alerts(sessions)}
    with sessions.begin() as session:
        mute = add_mute(session, matchers={"monitor": "amount_*"}, reason="vendor backfill",
                        by="ana", ends_at=NOW + dt.timedelta(days=2), now=NOW)
        mute_id = mute.id
    kind, by, note = events(sessions, by_monitor["amount_anomalies"])[-1]
    assert (kind, by) == ("muted", "ana")
    assert f"mute {mute_id}" in note and "vendor backfill" in note
    assert [k for k, _, _ in events(sessions, by_monitor["rows_anomalies"])] == ["opened"]
