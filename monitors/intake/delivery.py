"""Deliveries: whether a dataset's batch for a partition arrived, arrived late, was
quarantined, is missing, or is still pending (its deadline has not passed yet).

Derived from the batches, their arrival times, the dataset's deadline and the clock, never
stored: a late arrival heals a missing day by itself. `delivery_state` is the one rule; the
dashboard's overview and freshness tab and the CLI's `datasets list` read it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

import pandas as pd
from sqlalchemy.orm import Session

from monitors.intake.freshness import arrival_delay_hours, partition_due_at
from store import queries
from store.models import BatchStatus, Dataset


class DeliveryState(StrEnum):
    arrived = "arrived"          # a batch in force, within the deadline
    late = "late"                # a batch in force, after the deadline
    quarantined = "quarantined"  # delivered, but refused by the contract: nothing in force
    missing = "missing"          # nothing delivered and the deadline has passed
    pending = "pending"          # nothing delivered yet, and there is still time


@dataclass(frozen=True, slots=True)
class Delivery:
    dataset: str
    partition: dt.date
    state: DeliveryState
    rows: int | None = None
    arrived_at: dt.datetime | None = None
    hours_after_day_end: float | None = None
    reason: str | None = None
    paused: bool = False

    def to_json(self) -> dict:
        return {"partition": self.partition.isoformat(), "state": str(self.state),
                "rows": self.rows,
                "arrived_at": self.arrived_at.isoformat() if self.arrived_at else None,
                "hours_after_day_end": self.hours_after_day_end, "reason": self.reason}


def expected_partition(today: dt.date) -> dt.date:
    """The partition a daily pipeline delivers on `today`: yesterday's, in UTC."""
    return today - dt.timedelta(days=1)


def delivery_state(partition: dt.date, deadline_hours: float, now: dt.datetime, *,
                   arrived_at: dt.datetime | None = None,
                   quarantined: bool = False) -> DeliveryState:
    """The one rule: `arrived_at` is the partition's first arrival, given when a batch is in
    force (None: none is)."""
    if arrived_at is not None:
        late = arrival_delay_hours(partition, arrived_at) > deadline_hours
        return DeliveryState.late if late else DeliveryState.arrived
    if quarantined:
        return DeliveryState.quarantined
    return DeliveryState.missing if now > partition_due_at(partition, deadline_hours) else DeliveryState.pending


def list_partition_deliveries(session: Session, partition: dt.date,
                              now: dt.datetime) -> list[Delivery]:
    """Every dataset's delivery for one partition, by dataset name."""
    batches = queries.list_partition_batches(session, partition)
    deliveries = []
    for name, group in batches.groupby("dataset", sort=True):
        deadline_hours = float(group["deadline_hours"].iloc[0])
        paused = bool(group["paused"].iloc[0])
        ingested = group[group["status"] == BatchStatus.ingested.value]
        quarantined = group[group["status"] == BatchStatus.quarantined.value]
        if not ingested.empty:
            batch = ingested.iloc[-1]
            arrived_at = _datetime(group["arrived_at"].min())  # the first arrival, as above
            deliveries.append(Delivery(
                name, partition, delivery_state(partition, deadline_hours, now, arrived_at=arrived_at),
                rows=int(batch["rows"]) if pd.notna(batch["rows"]) else None,
                arrived_at=arrived_at,
                hours_after_day_end=round(arrival_delay_hours(partition, arrived_at), 1),
                reason=_paused("", paused), paused=paused))
        elif not quarantined.empty:
            batch = quarantined.iloc[-1]
            deliveries.append(Delivery(
                name, partition, DeliveryState.quarantined, arrived_at=_datetime(batch["arrived_at"]),
                reason=_paused(batch["reason"] or "", paused), paused=paused))
        else:
            due = partition_due_at(partition, deadline_hours)
            deliveries.append(Delivery(
                name, partition, delivery_state(partition, deadline_hours, now),
                reason=_paused(f"due by {due:%Y-%m-%d %H:%M} UTC", paused), paused=paused))
    return deliveries


def list_dataset_deliveries(session: Session, dataset: Dataset, now: dt.datetime) -> list[Delivery]:
    """One dataset's deliveries, oldest first: each partition with a batch in force, and each
    day between its first and its last delivery without one (a quarantined delivery leaves
    none in force). The days after the last delivery are not listed. A partition is on time
    or late by its first arrival, as the freshness monitor judges it (`freshness.first_arrival`): a
    corrected redelivery days later does not make it late."""
    batches = [b for b, _ in queries.list_batches(session, dataset.id)]
    first: dict[dt.date, dt.datetime] = {}
    for b in batches:
        first[b.partition] = min(first.get(b.partition, b.arrived_at), b.arrived_at)
    deliveries = [
        Delivery(dataset.name, b.partition,
                 delivery_state(b.partition, dataset.deadline_hours, now,
                                arrived_at=first[b.partition]),
                 rows=b.rows, arrived_at=first[b.partition],
                 hours_after_day_end=round(arrival_delay_hours(b.partition, first[b.partition]), 2))
        for b in batches if b.status == BatchStatus.ingested]
    if deliveries:
        last = max(d.partition for d in deliveries)
        deliveries += [Delivery(dataset.name, day, delivery_state(day, dataset.deadline_hours, now))
                       for day in queries.list_missing_partitions(session, dataset.id, last)]
    return sorted(deliveries, key=lambda d: d.partition)


def _datetime(value) -> dt.datetime:
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _paused(reason: str, paused: bool) -> str | None:
    if paused:
        return "schedule paused" + (f"; {reason}" if reason else "")
    return reason or None


def list_schema_runs(session: Session, dataset: Dataset) -> list[dict]:
    """The shape of the deliveries over time, oldest first: each run of batches in force
    with the same shape (from, to, batches, status, fingerprint (short), columns); a
    quarantined delivery is its own row with the reason, since that is the day the shape
    broke the contract. Superseded batches are left out."""
    rows: list[dict] = []
    for batch, _ in queries.list_batches(session, dataset.id):
        if batch.status == BatchStatus.superseded:
            continue
        shape = (batch.status, batch.schema_fingerprint, batch.columns, batch.reason)
        last = rows[-1] if rows else None
        if last is not None and last["_shape"] == shape and batch.status == BatchStatus.ingested:
            last["to"], last["batches"] = batch.partition, last["batches"] + 1
            continue
        rows.append({"from": batch.partition, "to": batch.partition, "batches": 1,
                     "status": batch.status,
                     "fingerprint": (batch.schema_fingerprint or "")[:12] or None,
                     "columns": batch.columns, "reason": batch.reason, "_shape": shape})
    for row in rows:
        del row["_shape"]
    return rows
