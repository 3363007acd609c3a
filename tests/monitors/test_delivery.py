"""Delivery states (monitors.intake.delivery): arrived, late, quarantined, missing and pending, per
partition and per dataset, derived from arrival times, the deadline and the clock."""
from __future__ import annotations

import argparse
import datetime as dt
import json

from monitors.cli import COMMANDS
from monitors.intake.delivery import (
    DeliveryState,
    delivery_state,
    list_dataset_deliveries,
    list_partition_deliveries,
)
from store.models import Batch, Dataset

DAY = dt.date(2026, 11, 10)


def end_of(partition: dt.date, hours: float = 0) -> dt.datetime:
    return dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(), dt.UTC) \
        + dt.timedelta(hours=hours)


def add(session, name: str, batches: list[tuple[dt.date, str, float]], *, paused=False,
        deadline_hours: float = 6.0) -> Dataset:
    """A dataset due `deadline_hours` after its day ends, with (partition, status, hours
    after day end) batches."""
    dataset = Dataset(name=name, format="csv", deadline_hours=deadline_hours, paused=paused)
    session.add(dataset)
    session.flush()
    for partition, status, hours in batches:
        session.add(Batch(dataset_id=dataset.id, partition=partition, status=status, rows=100,
                          reason="unexpected column(s) region" if status == "quarantined" else None,
                          fingerprint="f" * 64, arrived_at=end_of(partition, hours)))
    session.flush()
    return dataset


def test_the_rule_tells_the_five_states_apart():
    before_due, after_due = end_of(DAY, 5), end_of(DAY, 7)
    assert delivery_state(DAY, 6, after_due, arrived_at=end_of(DAY, 2)) == DeliveryState.arrived
    assert delivery_state(DAY, 6, after_due, arrived_at=end_of(DAY, 9)) == DeliveryState.late
    assert delivery_state(DAY, 6, after_due, quarantined=True) == DeliveryState.quarantined
    assert delivery_state(DAY, 6, after_due) == DeliveryState.missing
    assert delivery_state(DAY, 6, before_due) == DeliveryState.pending


def test_a_partition_lists_late_missing_pending_and_quarantined_datasets(sessions):
    with sessions.begin() as session:
        add(session, "a_on_time", [(DAY, "ingested", 2)])
        add(session, "b_late", [(DAY, "ingested", 16)])
        add(session, "c_refused", [(DAY, "quarantined", 1)])
        add(session, "d_nothing", [])
        add(session, "e_paused", [], paused=True)
        add(session, "f_long_deadline", [], deadline_hours=30.0)
    now = end_of(DAY, 12)  # past a 6 h deadline, within a 30 h one
    with sessions() as session:
        found = {d.dataset: d for d in list_partition_deliveries(session, DAY, now)}
    assert {name: str(d.state) for name, d in found.items()} == {
        "a_on_time": "arrived", "b_late": "late", "c_refused": "quarantined",
        "d_nothing": "missing", "e_paused": "missing", "f_long_deadline": "pending"}
    assert found["b_late"].hours_after_day_end == 16.0 and found["b_late"].rows == 100
    assert "region" in found["c_refused"].reason
    assert found["d_nothing"].reason == "due by 2026-11-11 06:00 UTC"
    assert found["e_paused"].reason.startswith("schedule paused; due by")
    # in a document: what `datasets list --json` shows
    assert found["b_late"].to_json()["state"] == "late"


def test_a_dataset_lists_each_partition_and_the_gaps_between_deliveries(sessions):
    days = [DAY + dt.timedelta(days=n) for n in range(4)]
    with sessions.begin() as session:
        dataset = add(session, "sales", [(days[0], "ingested", 1), (days[1], "ingested", 8),
                                         (days[2], "quarantined", 1), (days[3], "ingested", 1)])
        deliveries = list_dataset_deliveries(session, dataset, end_of(days[3], 1))
    assert [(d.partition, str(d.state)) for d in deliveries] == [
        (days[0], "arrived"), (days[1], "late"), (days[2], "missing"), (days[3], "arrived")]
    assert deliveries[1].hours_after_day_end == 8.0


def test_datasets_list_shows_the_delivery_due_now(sessions, settings, capsys):
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    with sessions.begin() as session:
        add(session, "arrived", [(yesterday, "ingested", 1)])
        add(session, "overdue", [], deadline_hours=0)
        add(session, "not_yet_due", [], deadline_hours=48)
    assert COMMANDS[("datasets", "list")](argparse.Namespace(json=True), settings, sessions) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert {name: d["delivery"]["state"] for name, d in listed.items()} == {
        "arrived": "arrived", "overdue": "missing", "not_yet_due": "pending"}
    assert listed["arrived"]["delivery"]["partition"] == yesterday.isoformat()
    assert listed["arrived"]["delivery"]["rows"] == 100
    assert "missing_partitions" in listed["overdue"]  # the fields it had stay
