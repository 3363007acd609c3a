"""Incidents as the on-call person sees them: one cause is one incident whose root is the
most upstream, earliest alert; the knock-ons are marked caused by it, are not notified,
follow the root's acknowledgement and resolution, and can be split out by hand."""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from monitors.cli import main
from monitors.lifecycle.alerts import acknowledge, get_alert, resolve
from monitors.lifecycle.incidents import group_incidents
from monitors.lifecycle.notify import NotifyConfig, Route, notify_run
from monitors.pipeline.gates import list_gate_changes
from store.models import AlertEvent
from tests.monitors.lineage_store import add_lineage
from tests.monitors.signals import NOW, alerts, day, fires, record, run_cli
from tests.monitors.test_notify import HOOK, RecordingSender

HOUR = dt.timedelta(hours=1)


def record_and_group(sessions, signals, now=NOW):
    recorded = record(sessions, signals, now=now)
    with sessions.begin() as session:
        group_incidents(session, [*recorded.new, *recorded.reopened], now=now)
    return recorded


def by_key(sessions) -> dict[tuple[str, str], dict]:
    return {(a["dataset"], a["monitor"]): a for a in alerts(sessions)}


def events(sessions, alert_id) -> list[tuple[str, str, str]]:
    with sessions() as session:
        return [(e.kind, e.by, e.note) for e in session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id))]


def test_alerts_on_one_partition_of_a_dataset_and_its_downstreams_are_one_incident(sessions):
    ids = add_lineage(sessions)
    record_and_group(sessions, [fires(ids["customers"], day(1), severity="critical"),
                                fires(ids["sales"], day(1)), fires(ids["report"], day(1)),
                                fires(ids["weather"], day(1))])
    found = by_key(sessions)
    root = found[("customers", "row_count_anomaly")]
    assert root["caused_by"] is None
    assert found[("sales", "row_count_anomaly")]["caused_by"] == root["id"]
    assert found[("report", "row_count_anomaly")]["caused_by"] == root["id"]
    # not built from customers: its own incident
    assert found[("weather", "row_count_anomaly")]["caused_by"] is None
    sales = found[("sales", "row_count_anomaly")]["id"]
    assert ("grouped", "system",
            f"caused by #{root['id']}: customers row_count_anomaly on {day(1)}") in events(sessions, sales)


def test_several_alerts_of_one_dataset_on_one_partition_are_one_incident(sessions):
    ids = add_lineage(sessions)
    record_and_group(sessions, [fires(ids["sales"], day(1), monitor="volume")], now=NOW)
    record_and_group(sessions, [fires(ids["sales"], day(1), monitor="nulls:age", column="age"),
                                fires(ids["sales"], day(1), monitor="nulls:city", column="city")],
                     now=NOW + HOUR)
    found = by_key(sessions)
    root = found[("sales", "volume")]  # the earliest
    assert root["caused_by"] is None
    assert found[("sales", "nulls:age")]["caused_by"] == root["id"]
    assert found[("sales", "nulls:city")]["caused_by"] == root["id"]


def test_other_partitions_and_conditions_that_began_earlier_are_not_grouped(sessions):
    ids = add_lineage(sessions)
    # a breakout that opened on day 0 and still fires on day 1
    record_and_group(sessions, [fires(ids["customers"], day(0), monitor="level", point=False)])
    record_and_group(sessions, [fires(ids["customers"], day(1), monitor="level", point=False),
                                fires(ids["sales"], day(1)), fires(ids["sales"], day(2), monitor="x")],
                     now=NOW + HOUR)
    assert all(a["caused_by"] is None for a in alerts(sessions))


def test_an_upstream_alert_that_opens_later_becomes_the_root_of_the_knock_ons(sessions):
    ids = add_lineage(sessions)
    # the downstream's run came first: its alerts form an incident of their own
    record_and_group(sessions, [fires(ids["sales"], day(1)),
                                fires(ids["sales"], day(1), monitor="nulls", column="age")])
    sales_root = by_key(sessions)[("sales", "row_count_anomaly")]
    assert by_key(sessions)[("sales", "nulls")]["caused_by"] == sales_root["id"]

    record_and_group(sessions, [fires(ids["customers"], day(1))], now=NOW + HOUR)
    found = by_key(sessions)
    root = found[("customers", "row_count_anomaly")]
    assert root["caused_by"] is None
    assert found[("sales", "row_count_anomaly")]["caused_by"] == root["id"]
    assert found[("sales", "nulls")]["caused_by"] == root["id"]

    # grouping again changes nothing, and writes no event
    before = events(sessions, sales_root["id"])
    with sessions.begin() as session:
        group_incidents(session, [a["id"] for a in alerts(sessions)], now=NOW + 2 * HOUR)
    assert events(sessions, sales_root["id"]) == before
    assert by_key(sessions) == found


def test_one_notification_per_incident_its_root(sessions):
    ids = add_lineage(sessions)
    recorded = record_and_group(sessions, [fires(ids["customers"], day(1), severity="critical")])
    knock_on = record_and_group(sessions, [fires(ids["sales"], day(1), severity="critical"),
                                           fires(ids["sales"], day(1), monitor="nulls", column="age")],
                                now=NOW + HOUR)
    config = NotifyConfig(routes=[Route(HOOK)], backoff=dt.timedelta(milliseconds=5))
    sender = RecordingSender()
    with sessions.begin() as session:
        first = notify_run(session, dataset="customers", recorded=recorded, backfill=False,
                           now=NOW, config=config, sender=sender)
        second = notify_run(session, dataset="sales", recorded=knock_on, backfill=False,
                            now=NOW + HOUR, config=config, sender=sender)
    root = by_key(sessions)[("customers", "row_count_anomaly")]["id"]
    assert first.notified == [root] and len(sender.posts) == 1
    assert second.notified == [] and second.sent == []
    assert set(second.skipped.values()) == {f"caused by #{root}"}
    assert len(second.skipped) == 2


def test_acknowledging_or_resolving_the_root_applies_to_its_caused_alerts(sessions):
    ids = add_lineage(sessions)
    record_and_group(sessions, [fires(ids["customers"], day(1), severity="critical"),
                                fires(ids["sales"], day(1)), fires(ids["weather"], day(1))])
    found = by_key(sessions)
    root, caused = found[("customers", "row_count_anomaly")], found[("sales", "row_count_anomaly")]
    other = found[("weather", "row_count_anomaly")]

    with sessions.begin() as session:
        acknowledge(session, root["id"], by="ana", note="on it", now=NOW + HOUR)
    found = by_key(sessions)
    assert found[("sales", "row_count_anomaly")]["status"] == "acknowledged"
    assert found[("weather", "row_count_anomaly")]["status"] == "open"
    assert events(sessions, caused["id"])[-1] == (
        "acknowledged", "ana", f"with its incident's root #{root['id']}: on it")

    with sessions.begin() as session:
        resolve(session, root["id"], by="bo", resolution="fixed", now=NOW + 2 * HOUR)
    with sessions() as session:
        shown = get_alert(session, caused["id"], now=NOW + 2 * HOUR)
    assert shown["status"] == "resolved" and shown["resolution"] == "fixed"
    assert shown["events"][-1]["kind"] == "resolved" and shown["events"][-1]["by"] == "bo"
    assert f"#{root['id']}" in shown["events"][-1]["note"]
    assert by_key(sessions)[("weather", "row_count_anomaly")]["status"] == other["status"] == "open"


def test_an_alert_is_split_out_of_its_incident_by_hand_and_stays_out(settings, sessions, capsys):
    ids = add_lineage(sessions)
    record_and_group(sessions, [fires(ids["customers"], day(1)), fires(ids["sales"], day(1))])
    found = by_key(sessions)
    root, caused = found[("customers", "row_count_anomaly")], found[("sales", "row_count_anomaly")]

    assert run_cli(settings, sessions, "alerts", "split", str(caused["id"]), "--by", "ana") == 0
    assert by_key(sessions)[("sales", "row_count_anomaly")]["caused_by"] is None
    assert events(sessions, caused["id"])[-1] == ("split", "ana", f"split out of the incident of #{root['id']}")
    assert events(sessions, root["id"])[-1] == ("split", "ana", f"#{caused['id']} split out of this incident")

    # grouping again (another alert of that partition opens) leaves it out
    record_and_group(sessions, [fires(ids["report"], day(1))], now=NOW + HOUR)
    found = by_key(sessions)
    assert found[("sales", "row_count_anomaly")]["caused_by"] is None
    assert found[("report", "row_count_anomaly")]["caused_by"] == root["id"]

    # a root, or an alert on its own, has nothing to split from: refused, nothing changes
    capsys.readouterr()
    assert run_cli(settings, sessions, "alerts", "split", str(root["id"]), "--by", "ana") == 2
    assert "not caused by another alert" in capsys.readouterr().err
    assert run_cli(settings, sessions, "alerts", "split", "999", "--by", "ana") == 2


def test_alerts_list_shows_what_caused_each_alert(settings, sessions, capsys):
    ids = add_lineage(sessions)
    record_and_group(sessions, [fires(ids["customers"], day(1)), fires(ids["sales"], day(1))])
    capsys.readouterr()
    assert main(["alerts", "list", "--json"]) == 0
    rows = {r["dataset"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["customers"]["caused_by"] is None
    assert rows["sales"]["caused_by"] == rows["customers"]["id"]
    assert main(["alerts", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if f"[caused by #{rows['customers']['id']}]" in line] == [
        line for line in lines if " sales " in line]


def test_the_demos_volume_drop_is_one_incident_that_holds_the_scores(demo, sessions, capsys):
    truth = json.loads((demo.home / "demo" / "incidents.json").read_text())
    drop = next(i["partition"] for i in truth if i["kind"] == "volume_drop")
    on_that_day = [a for a in alerts(sessions, now=dt.datetime.now(dt.UTC))
                   if a["partition"] == drop]
    # (the model's performance on that day is judged a week later, when its outcomes land:
    # after the corrected rerun closed the incident, so those alerts are an incident of their own)
    roots = [a for a in on_that_day if a["caused_by"] is None
             and not a["monitor"].startswith("performance")]
    assert [(a["dataset"], a["monitor"]) for a in roots] == [("customer_snapshot", "volume:anomalies")]
    knock_ons = [a for a in on_that_day if a["caused_by"] == roots[0]["id"]]
    assert ("model_scores", "volume:anomalies") in [(a["dataset"], a["monitor"]) for a in knock_ons]

    # the incident held the scores, the most upstream alert first, until the corrected
    # snapshot was rerun: its root passed, the incident closed, the gate released
    with sessions() as session:
        trail = list_gate_changes(session, "model_scores", dt.date.fromisoformat(drop))
    assert [c["verdict"] for c in trail][:2] == ["held", "safe"]
    assert trail[0]["alert_ids"][0] == roots[0]["id"]
    assert f"#{roots[0]['id']} passed on {drop}" in trail[1]["why"]
    assert all(a["status"] == "resolved" for a in alerts(sessions, now=dt.datetime.now(dt.UTC))
               if a["id"] in {roots[0]["id"], *(k["id"] for k in knock_ons)})


def test_a_root_that_passes_on_its_rerun_resolves_its_incident_each_timeline_saying_why(sessions):
    from tests.monitors.signals import passes

    ids = add_lineage(sessions)
    record_and_group(sessions, [fires(ids["customers"], day(1), severity="critical"),
                                fires(ids["sales"], day(1)), fires(ids["report"], day(1))])
    found = by_key(sessions)
    root = found[("customers", "row_count_anomaly")]["id"]
    knock_ons = [found[(d, "row_count_anomaly")]["id"] for d in ("sales", "report")]
    # the corrected snapshot is rerun: its monitor passes on the same partition
    recorded = record(sessions, [passes(ids["customers"], day(1))], now=NOW + HOUR)
    assert sorted(recorded.resolved) == sorted([root, *knock_ons])
    after = {a["id"]: a for a in alerts(sessions)}
    assert {after[i]["status"] for i in [root, *knock_ons]} == {"resolved"}
    why = f"monitor row_count_anomaly passed on partition {day(1)}"
    assert ("resolved", "system", why) in events(sessions, root)
    for knock_on in knock_ons:
        assert ("resolved", "system", f"with its incident's root #{root}: {why}") in events(sessions, knock_on)
    # a knock-on passing on its own closes nothing else
    record_and_group(sessions, [fires(ids["customers"], day(2), severity="critical"),
                                fires(ids["sales"], day(2))], now=NOW + 2 * HOUR)
    record(sessions, [passes(ids["sales"], day(2))], now=NOW + 3 * HOUR)
    assert [a["status"] for a in alerts(sessions) if a["partition"] == str(day(2))
            and a["dataset"] == "customers"] == ["open"]
