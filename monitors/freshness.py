"""Timeliness: how late each batch arrived, and which partitions are late or missing.
Derived from arrival times and the dataset's deadline, never stored as flags."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from store import queries
from store.models import BatchStatus, Dataset


def arrival_delay_hours(partition: dt.date, arrived_at: dt.datetime) -> float:
    """Hours between the end of the partition's day (UTC) and the batch's arrival."""
    day_end = dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(), dt.UTC)
    return (arrived_at - day_end).total_seconds() / 3600


def list_late_partitions(session: Session, dataset: Dataset) -> list[dt.date]:
    """Partitions whose batch in force arrived after the dataset's deadline."""
    return [batch.partition for batch, _ in queries.list_batches(session, dataset.id)
            if batch.status == BatchStatus.ingested
            and arrival_delay_hours(batch.partition, batch.arrived_at) > dataset.deadline_hours]
