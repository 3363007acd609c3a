"""The alert lifecycle as an on-call engineer lives it: one alert per condition, reruns
that change nothing, auto-resolve and reopen, and a timeline of who did what."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from monitors.catalog import UnknownDataset
from monitors.lifecycle.alerts import (
    REOPEN_WINDOW,
    acknowledge,
    comment,
    get_alert,
    list_alerts,
    note_rerun_requested,
    resolve,
)
from store.models import Alert, AlertEvent, AlertOccurrence, Dataset
from tests.monitors.signals import NOW, alerts, day, fires, passes, record, run_cli


def timeline(sessions, alert_id: int) -> list[str]:
    with sessions() as session:
        return [e["kind"] for e in get_alert(session, alert_id, now=NOW)["events"]]


def snapshot(sessions) -> dict:
    """Everything the lifecycle writes, to compare before and after."""
    with sessions() as session:
        def rows(model):
            return [{c.name: getattr(r, c.name) for c in model.__table__.columns}
                    for r in session.scalars(select(model).order_by(model.id)).all()]
        return {"alerts": rows(Alert), "events": rows(AlertEvent), "occurrences": rows(AlertOccurrence)}


def test_a_condition_firing_on_two_runs_is_one_alert_seen_twice(sessions, sales):
    first = record(sessions, [fires(sales, day(0), monitor="amount_breakout", point=False, value=400)])
    second = record(sessions, [fires(sales, day(1), monitor="amount_breakout", point=False, value=420)],
                    now=NOW + dt.timedelta(days=1))

    [alert] = alerts(sessions)
    assert first.new == [alert["id"]] and second.new == [] and second.updated == [alert["id"]]
    assert alert["occurrences"] == 2
    assert alert["partition"] == day(1).isoformat() and alert["value"] == 420
    assert alert["first_seen_at"] == NOW.isoformat()
    assert alert["last_seen_at"] == (NOW + dt.timedelta(days=1)).isoformat()
    assert timeline(sessions, alert["id"]) == ["opened", "updated"]


def test_point_findings_on_different_partitions_are_different_alerts(sessions, sales):
    record(sessions, [fires(sales, day(0)), fires(sales, day(3))])
    assert sorted(a["partition"] for a in alerts(sessions)) == [day(0).isoformat(), day(3).isoformat()]


def test_recording_the_same_signals_again_changes_nothing(sessions, sales):
    run = [fires(sales, day(0)), fires(sales, day(0), monitor="amount_breakout", point=False),
           fires(sales, day(0), monitor="nulls", column="amount", severity="critical"),
           passes(sales, day(0), monitor="volume")]
    record(sessions, run, run_id=None)
    before = snapshot(sessions)

    # the same run retried, then a rerun of the same inputs hours later
    again = record(sessions, run)
    rerun = record(sessions, list(reversed(run)), now=NOW + dt.timedelta(hours=5))

    assert not again.changed and not rerun.changed and rerun.muted == []
    assert snapshot(sessions) == before
    assert [a["occurrences"] for a in alerts(sessions)] == [1, 1, 1]


def test_a_rerun_with_the_same_finding_leaves_a_resolved_alert_resolved(sessions, sales):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions.begin() as session:
        resolve(session, alert["id"], by="ana", resolution="expected", note="holiday sale", now=NOW)

    record(sessions, [fires(sales, day(0))], now=NOW + dt.timedelta(hours=1))

    [alert] = alerts(sessions)
    assert (alert["status"], alert["resolution"]) == ("resolved", "expected")


def test_a_changed_finding_on_the_same_partition_updates_without_counting_twice(sessions, sales):
    record(sessions, [fires(sales, day(0), value=412)])
    changed = record(sessions, [fires(sales, day(0), value=380)], now=NOW + dt.timedelta(hours=1))

    [alert] = alerts(sessions)
    assert changed.updated == [alert["id"]]
    assert (alert["value"], alert["occurrences"]) == (380, 1)


def test_a_passing_monitor_resolves_its_alert_and_a_quick_refire_reopens_it(sessions, sales):
    breakout = dict(monitor="amount_breakout", point=False)
    record(sessions, [fires(sales, day(0), **breakout)])
    passed = record(sessions, [passes(sales, day(1), **breakout)], now=NOW + dt.timedelta(days=1))
    [alert] = alerts(sessions)
    assert passed.resolved == [alert["id"]]
    assert (alert["status"], alert["resolution"]) == ("resolved", "auto")

    refired = record(sessions, [fires(sales, day(3), **breakout)], now=NOW + dt.timedelta(days=3))

    [alert] = alerts(sessions)
    assert refired.reopened == [alert["id"]] and refired.new == []
    assert (alert["status"], alert["resolution"], alert["occurrences"]) == ("open", None, 2)
    with sessions() as session:
        events = get_alert(session, alert["id"], now=NOW)["events"]
    assert [(e["kind"], e["by"]) for e in events] == [
        ("opened", "system"), ("resolved", "system"), ("reopened", "system")]
    assert "passed on partition 2026-11-11" in events[1]["note"]


def test_a_refire_after_the_reopen_window_opens_a_new_alert(sessions, sales):
    breakout = dict(monitor="amount_breakout", point=False)
    record(sessions, [fires(sales, day(0), **breakout), passes(sales, day(1), **breakout)])
    later = day(0) + REOPEN_WINDOW + dt.timedelta(days=1)

    refired = record(sessions, [fires(sales, later, **breakout)])

    statuses = {a["id"]: a["status"] for a in alerts(sessions)}
    assert refired.new and refired.reopened == []
    assert sorted(statuses.values()) == ["open", "resolved"]


def test_a_backfill_replays_open_resolve_and_reopen_by_partition_not_by_clock(sessions, sales):
    breakout = dict(monitor="amount_breakout", point=False)
    # months of history recorded within one second of wall time
    history = [fires(sales, day(0), **breakout), passes(sales, day(1), **breakout),
               fires(sales, day(2), **breakout), passes(sales, day(3), **breakout),
               fires(sales, day(20), **breakout)]

    done = record(sessions, history)

    assert len(done.new) == 2 and len(done.reopened) == 1
    assert sorted((a["status"], a["occurrences"]) for a in alerts(sessions)) == [
        ("open", 1), ("resolved", 2)]


def test_a_rerun_of_a_range_leaves_an_earlier_alert_of_the_same_monitor_as_it_was(sessions, sales):
    # the monitor fired, passed, and fired again past the reopen window: two alerts of one
    # identity; replaying the whole range must find the first firing already recorded,
    # not reopen the second alert with it (seen on the demo's sign-flipped income)
    breakout = dict(monitor="amount_breakout", point=False)
    later = day(0) + REOPEN_WINDOW + dt.timedelta(days=5)
    history = [fires(sales, day(0), **breakout, value=400), passes(sales, day(1), **breakout),
               fires(sales, later, **breakout, value=900),
               passes(sales, later + dt.timedelta(days=1), **breakout)]
    record(sessions, history)
    before = snapshot(sessions)

    rerun = record(sessions, history, now=NOW + dt.timedelta(days=30))

    assert not rerun.changed, rerun
    assert snapshot(sessions) == before


def test_a_corrected_batch_rerun_resolves_the_alert_it_invalidates(sessions, sales):
    record(sessions, [fires(sales, day(5))], now=NOW)
    record(sessions, [passes(sales, day(6))], now=NOW + dt.timedelta(days=1))
    [alert] = alerts(sessions)
    assert alert["status"] == "open"  # a pass on another partition is about another batch

    rerun = record(sessions, [passes(sales, day(5))], now=NOW + dt.timedelta(days=2))

    [alert] = alerts(sessions)
    assert rerun.resolved == [alert["id"]] and alert["resolution"] == "auto"
    with sessions() as session:
        [firing] = get_alert(session, alert["id"], now=NOW)["firings"]
    assert firing["cleared_at"] is not None


def test_an_old_partition_passing_does_not_undo_a_newer_firing(sessions, sales):
    breakout = dict(monitor="amount_breakout", point=False)
    record(sessions, [fires(sales, day(5), **breakout), fires(sales, day(7), **breakout)])

    rerun = record(sessions, [passes(sales, day(5), **breakout)], now=NOW + dt.timedelta(days=1))

    [alert] = alerts(sessions)
    assert rerun.resolved == [] and alert["status"] == "open"


def test_an_acknowledged_alert_firing_again_stays_acknowledged(sessions, sales):
    breakout = dict(monitor="amount_breakout", point=False)
    record(sessions, [fires(sales, day(0), **breakout)])
    with sessions.begin() as session:
        acknowledge(session, alerts(sessions)[0]["id"], by="ana", now=NOW)

    record(sessions, [fires(sales, day(1), **breakout)], now=NOW + dt.timedelta(days=1))

    [alert] = alerts(sessions)
    assert (alert["status"], alert["occurrences"]) == ("acknowledged", 2)


def test_of_conflicting_verdicts_on_one_partition_the_worst_wins_whatever_the_order(sessions, sales):
    bad, mild = fires(sales, day(0), value=900), fires(sales, day(0), value=300)
    mild = replace(mild, finding=replace(mild.finding, score=2.0))

    record(sessions, [bad, passes(sales, day(0)), mild])
    again = record(sessions, [mild, passes(sales, day(0)), bad], now=NOW + dt.timedelta(hours=1))

    [alert] = alerts(sessions)
    assert alert["value"] == 900 and not again.changed


def test_ack_resolve_comment_and_rerun_requests_make_the_timeline(sessions, sales):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions.begin() as session:
        acknowledge(session, alert["id"], by="ana", note="looking", now=NOW + dt.timedelta(minutes=5))
        note_rerun_requested(session, alert["id"], by="ana", run_id=17, now=NOW + dt.timedelta(minutes=6))
        comment(session, alert["id"], by="bo", note="upstream fixed the feed",
                now=NOW + dt.timedelta(minutes=30))
        resolve(session, alert["id"], by="bo", resolution="fixed", note="reloaded",
                now=NOW + dt.timedelta(minutes=40))

    with sessions() as session:
        shown = get_alert(session, alert["id"], now=NOW)
    assert [(e["kind"], e["by"], e["note"]) for e in shown["events"]] == [
        ("opened", "system", shown["events"][0]["note"]),
        ("acknowledged", "ana", "looking"),
        ("rerun_requested", "ana", "run 17"),
        ("commented", "bo", "upstream fixed the feed"),
        ("resolved", "bo", "fixed: reloaded"),
    ]
    assert (shown["status"], shown["resolution"]) == ("resolved", "fixed")


@pytest.mark.parametrize("action, message", [
    (lambda s, i: acknowledge(s, 999, by="ana"), "no alert with id 999"),
    (lambda s, i: resolve(s, i, by="ana", resolution="wontfix"), "unknown resolution 'wontfix'"),
    (lambda s, i: resolve(s, i, by="", resolution="fixed"), "needs a name"),
    (lambda s, i: comment(s, i, by="ana", note="  "), "a comment needs a note"),
])
def test_refused_actions_say_why(sessions, sales, action, message):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions() as session, pytest.raises(ValueError, match=message):
        action(session, alert["id"])


def test_a_resolved_alert_cannot_be_acknowledged(sessions, sales):
    record(sessions, [fires(sales, day(0))])
    record(sessions, [passes(sales, day(0))], now=NOW + dt.timedelta(hours=1))
    [alert] = alerts(sessions)
    with sessions() as session, pytest.raises(ValueError, match="is resolved"):
        acknowledge(session, alert["id"], by="ana")


def test_list_filters_by_status_dataset_severity_and_monitor(sessions, sales):
    with sessions() as session:
        customers = session.scalar(select(Dataset.id).where(Dataset.name == "customers"))
    record(sessions, [fires(sales, day(0), severity="critical"), fires(sales, day(1)),
                      fires(customers, day(0), monitor="nulls", column="age")])
    with sessions.begin() as session:
        first = list_alerts(session, dataset="sales", severity="critical", now=NOW)[0]
        acknowledge(session, first["id"], by="ana", now=NOW)

    assert [a["partition"] for a in alerts(sessions, dataset="sales")] == [
        day(1).isoformat(), day(0).isoformat()]
    assert [a["status"] for a in alerts(sessions, status="acknowledged")] == ["acknowledged"]
    assert [a["column"] for a in alerts(sessions, monitor="nulls")] == ["age"]
    assert len(alerts(sessions, status=["open", "acknowledged"], limit=2)) == 2
    assert len(alerts(sessions, since=NOW + dt.timedelta(hours=1))) == 0
    with pytest.raises(UnknownDataset, match="unknown dataset 'nope'"):
        alerts(sessions, dataset="nope")
    with pytest.raises(ValueError, match="unknown status 'closed'"):
        alerts(sessions, status="closed")


def test_every_listed_alert_carries_the_fields_design_promises(sessions, sales):
    record(sessions, [fires(sales, day(0), column="amount")])
    [alert] = alerts(sessions)
    assert {"id", "dataset", "column", "monitor", "detector", "severity", "status", "muted",
            "partition", "value", "expected", "lower", "upper", "message", "occurrences",
            "first_seen_at", "last_seen_at", "resolution", "evidence"} <= set(alert)
    assert alert["evidence"]["metric"] == "row_count" and alert["evidence"]["score"] == 5.1
    json.dumps(alert)  # the CLI prints it as is


# ---- the command line -------------------------------------------------------------------

def test_the_cli_lists_shows_and_triages_alerts(settings, sessions, sales, capsys):
    record(sessions, [fires(sales, day(0), column="amount")])
    capsys.readouterr()

    assert run_cli(settings, sessions, "alerts", "ack", "1", "--by", "ana", "--note", "on it") == 0
    assert run_cli(settings, sessions, "alerts", "comment", "1", "--by", "bo", "--note", "seen") == 0
    assert run_cli(settings, sessions, "alerts", "resolve", "1", "--by", "bo",
                   "--resolution", "false positive") == 0
    capsys.readouterr()

    assert run_cli(settings, sessions, "alerts", "list", "--dataset", "sales", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["status"], listed["resolution"]) == ("resolved", "false_positive")

    assert run_cli(settings, sessions, "alerts", "show", "1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in shown["events"]] == ["opened", "acknowledged", "commented", "resolved"]


@pytest.mark.parametrize("argv, message", [
    (("alerts", "ack", "42", "--by", "ana"), "no alert with id 42"),
    (("alerts", "resolve", "1", "--by", "ana", "--resolution", "meh"), "unknown resolution"),
    (("alerts", "list", "--dataset", "nope"), "unknown dataset 'nope'"),
])
def test_cli_refusals_go_to_stderr_with_exit_2(settings, sessions, sales, capsys, argv, message):
    record(sessions, [fires(sales, day(0))])
    capsys.readouterr()
    assert run_cli(settings, sessions, *argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    with sessions() as session:
        assert session.scalar(select(func.count(AlertEvent.id))) == 1  # only "opened"
