"""Timeliness: how late each batch arrived, and which partitions are late or missing.
Derived from arrival times and the dataset's deadline, never stored as flags.

Lateness is somebody's incident only for a partition that fell due while the system was
watching the dataset (`unwatched`): a backfill of history lands files months after their
deadline, and nobody was waiting for them then. A partition's lateness is that of its first
delivery (`first_arrival`), so a corrected redelivery of an old partition is not "late".
A file that lands for a partition marked missing is noticed by monitors.intake.late_files."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitors.errors import Invalid
from store import queries
from store.models import Batch, BatchStatus, Dataset

# partitions a delivery or a run may be for: before 1970 or over a year ahead is a mistyped
# or placeholder date (0001-01-01, 9999-12-31), which would make every day since "missing",
# queue a backfill of 700k days, or overflow date arithmetic
EARLIEST_PARTITION = dt.date(1970, 1, 1)
LATEST_AHEAD = dt.timedelta(days=366)


def check_partition_window(partition: dt.date, today: dt.date | None = None) -> dt.date:
    """`partition`, when it lies in the window a delivery may be for; Invalid otherwise."""
    today = today or dt.datetime.now(dt.UTC).date()
    latest = today + LATEST_AHEAD
    if not EARLIEST_PARTITION <= partition <= latest:
        raise Invalid(f"partition {partition.isoformat()} is outside the accepted window "
                      f"{EARLIEST_PARTITION.isoformat()} .. {latest.isoformat()} (from 1970 to a "
                      "year after today): a mistyped or placeholder date?")
    return partition


def partition_day_end(partition: dt.date) -> dt.datetime:
    """When a partition's day ends: midnight UTC after it. Its batch is expected from then,
    and its delay counts from then."""
    return dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(), dt.UTC)


def partition_due_at(partition: dt.date, deadline_hours: float) -> dt.datetime:
    """When a partition's batch is due: the end of its day plus the dataset's deadline.
    Arriving later is late; nothing by then is missing."""
    return partition_day_end(partition) + dt.timedelta(hours=deadline_hours)


def arrival_delay_hours(partition: dt.date, arrived_at: dt.datetime) -> float:
    """Hours between the end of the partition's day (UTC) and the batch's arrival."""
    return (arrived_at - partition_day_end(partition)).total_seconds() / 3600


def list_late_partitions(session: Session, dataset: Dataset) -> list[dt.date]:
    """Partitions whose batch in force arrived after the dataset's deadline."""
    return [batch.partition for batch, _ in queries.list_batches(session, dataset.id)
            if batch.status == BatchStatus.ingested
            and arrival_delay_hours(batch.partition, batch.arrived_at) > dataset.deadline_hours]


def unwatched(dataset: Dataset, partition: dt.date) -> str | None:
    """Why the partition's lateness is judged by nobody (None: it is judged): it fell due
    before the dataset's first run, so nobody was watching for it then (a backfill)."""
    since = dataset.watched_since
    due = partition_due_at(partition, dataset.deadline_hours)
    if since is None or due >= since:
        return None
    return (f"due {due:%Y-%m-%d %H:%M} UTC, before monitoring began "
            f"({since:%Y-%m-%d %H:%M} UTC): history, not an incident")


def first_arrival(session: Session, dataset_id: int, partition: dt.date) -> dt.datetime | None:
    """When anything was first delivered for the partition (a batch since superseded or
    quarantined included): a corrected redelivery keeps the first delivery's lateness."""
    first = session.scalar(select(func.min(Batch.arrived_at)).where(
        Batch.dataset_id == dataset_id, Batch.partition == partition))
    if first is not None and first.tzinfo is None:  # SQLite hands aggregates back naive
        first = first.replace(tzinfo=dt.UTC)
    return first


def note_watching(dataset: Dataset, clock: dt.datetime) -> None:
    """A run of the dataset happens at `clock`: it is watched from its earliest run on."""
    if dataset.watched_since is None or clock < dataset.watched_since:
        dataset.watched_since = clock
