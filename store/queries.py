"""Query functions: verb first, session first. The caller owns the transaction.

pandas is imported by the functions that return frames, not here: looking up a dataset or
an alert (the CLI, the alert lifecycle) then costs no pandas import.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    and_,
    case,
    delete,
    false,
    func,
    insert,
    not_,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from store.models import (
    Alert,
    AlertEvent,
    AlertOccurrence,
    AlertStatus,
    Batch,
    BatchStatus,
    Dataset,
    Metric,
    MuteRule,
    Run,
)

if TYPE_CHECKING:
    import pandas as pd


def get_dataset(session: Session, name: str) -> Dataset | None:
    return session.scalar(select(Dataset).where(Dataset.name == name))


def list_datasets(session: Session) -> Sequence[Dataset]:
    return session.scalars(select(Dataset).order_by(Dataset.name)).all()


def list_batches(session: Session, dataset_id: int | None = None) -> Sequence[tuple[Batch, str]]:
    """Every batch with its dataset's name, oldest partition first."""
    query = select(Batch, Dataset.name).join(Dataset, Dataset.id == Batch.dataset_id)
    if dataset_id is not None:
        query = query.where(Batch.dataset_id == dataset_id)
    return session.execute(query.order_by(Dataset.name, Batch.partition, Batch.id)).all()


def get_current_batch(session: Session, dataset_id: int, partition: dt.date) -> Batch | None:
    """The batch in force for a partition (status ingested), if any. Read afresh
    (populate_existing), since another process may have superseded it since this session
    last loaded it."""
    return session.scalar(select(Batch).where(
        Batch.dataset_id == dataset_id, Batch.partition == partition,
        Batch.status == BatchStatus.ingested).execution_options(populate_existing=True))


def get_latest_batch(session: Session, dataset_id: int, partition: dt.date) -> Batch | None:
    """The last batch delivered for a partition, whatever its status (read afresh, as
    `get_current_batch`)."""
    return session.scalar(select(Batch).where(
        Batch.dataset_id == dataset_id, Batch.partition == partition,
    ).order_by(Batch.id.desc()).limit(1).execution_options(populate_existing=True))


def supersede_batch(session: Session, batch: Batch) -> None:
    """A newer good batch replaces `batch`; its metrics go, since history is kept per batch
    in force and a superseded batch's profile must never feed a monitor again."""
    batch.status = BatchStatus.superseded
    session.execute(delete(Metric).where(Metric.batch_id == batch.id))


def add_metrics(session: Session, batch: Batch, rows: Iterable[tuple[str | None, str, str, float | None]],
                *, dataset_id: int | None = None) -> int:
    """Insert a batch's profile, one row per (column, metric, key, value), in bulk.
    `dataset_id`: metrics the batch yields for another dataset (labels give a model output's
    performance); they go when the batch is superseded."""
    values = [{"dataset_id": dataset_id or batch.dataset_id, "batch_id": batch.id, "partition": batch.partition,
               "column": column, "metric": metric, "key": key, "value": value}
              for column, metric, key, value in rows]
    if values:
        session.execute(insert(Metric), values)
    return len(values)


def count_metrics(session: Session, batch_id: int | None = None) -> int:
    query = select(func.count(Metric.id))
    if batch_id is not None:
        query = query.where(Metric.batch_id == batch_id)
    return session.scalar(query) or 0


def read_metric_series(session: Session, dataset_id: int, metric: str, column: str | None = None,
                       key: str = "", until: dt.date | None = None) -> pd.Series:
    """A stored metric as a time series indexed by partition (a DatetimeIndex)."""
    import pandas as pd

    column_match = Metric.column.is_(None) if column is None else Metric.column == column
    query = select(Metric.partition, Metric.value).where(
        Metric.dataset_id == dataset_id, Metric.metric == metric, Metric.key == key, column_match)
    if until is not None:
        query = query.where(Metric.partition <= until)
    rows = session.execute(query.order_by(Metric.partition)).all()
    index = pd.DatetimeIndex([pd.Timestamp(p) for p, _ in rows], name="partition")
    return pd.Series([v for _, v in rows], index=index, name=metric, dtype="float64")


def list_partitions(session: Session, dataset_id: int) -> list[dt.date]:
    """Partitions with a batch in force, in order."""
    return list(session.scalars(select(Batch.partition).where(
        Batch.dataset_id == dataset_id, Batch.status == BatchStatus.ingested,
    ).order_by(Batch.partition)).all())


def first_delivered_partition(session: Session, dataset_id: int) -> dt.date | None:
    """The earliest partition anything was delivered for (landed or quarantined)."""
    return session.scalar(select(func.min(Batch.partition)).where(Batch.dataset_id == dataset_id))


def list_missing_partitions(session: Session, dataset_id: int, until: dt.date) -> list[dt.date]:
    """Days since the first delivery up to `until` with no batch in force: missing, or only
    quarantined deliveries. Derived, never stored, so a late arrival heals it."""
    have = set(list_partitions(session, dataset_id))
    if not have:
        return []
    day, missing = min(have), []
    while day <= until:
        if day not in have:
            missing.append(day)
        day += dt.timedelta(days=1)
    return missing


def read_metrics(session: Session, dataset_id: int, until: dt.date | None = None,
                 metrics: Sequence[str] | None = None, since: dt.date | None = None) -> pd.DataFrame:
    """A dataset's stored metrics in long format (partition, column, metric, key, value),
    the history monitors evaluate; one query, however many monitors read it."""
    import pandas as pd

    query = select(Metric.partition, Metric.column, Metric.metric, Metric.key, Metric.value).where(
        Metric.dataset_id == dataset_id)
    if since is not None:
        query = query.where(Metric.partition >= since)
    if until is not None:
        query = query.where(Metric.partition <= until)
    if metrics is not None:
        query = query.where(Metric.metric.in_(list(metrics)))
    names = ["partition", "column", "metric", "key", "value"]
    rows = session.execute(query).all()
    # column by column: from Row objects pandas probes every cell (a year of a 50-column
    # dataset, 130k rows, took 3.2 s that way and 0.1 s this way)
    columns = list(zip(*rows)) if rows else [[] for _ in names]
    frame = pd.DataFrame({name: list(values) for name, values in zip(names, columns)}, columns=names)
    frame["partition"] = pd.to_datetime(frame["partition"])
    frame["value"] = frame["value"].astype("float64")
    return frame


# ---- the dashboard's datasets, model outputs, monitors and pipeline pages ----------------


def list_metric_names(session: Session, dataset_id: int) -> list[tuple[str | None, str]]:
    """The (column, metric) pairs stored for a dataset: what its charts can show."""
    return [tuple(row) for row in session.execute(
        select(Metric.column, Metric.metric).where(Metric.dataset_id == dataset_id).distinct()
        .order_by(Metric.column, Metric.metric)).all()]


def read_column_metrics(session: Session, dataset_id: int, column: str | None,
                        metrics: Sequence[str]) -> pd.DataFrame:
    """One column's stored metrics (partition, metric, key, value): a chart reads one column,
    not the dataset's whole history."""
    import pandas as pd

    column_match = Metric.column.is_(None) if column is None else Metric.column == column
    rows = session.execute(select(Metric.partition, Metric.metric, Metric.key, Metric.value).where(
        Metric.dataset_id == dataset_id, column_match, Metric.metric.in_(list(metrics)),
    ).order_by(Metric.partition)).all()
    names = ["partition", "metric", "key", "value"]
    # column by column: pandas builds a frame from Row objects one cell at a time (8x slower)
    columns = list(zip(*rows)) if rows else [[] for _ in names]
    frame = pd.DataFrame({name: list(values) for name, values in zip(names, columns)}, columns=names)
    frame["partition"] = pd.to_datetime(frame["partition"])
    frame["value"] = frame["value"].astype("float64")
    return frame


def set_dataset_paused(session: Session, dataset_id: int, paused: bool) -> bool:
    """Pause or resume a dataset's schedule; False when the dataset is gone."""
    done = session.execute(update(Dataset).where(Dataset.id == dataset_id).values(paused=paused)
                           .returning(Dataset.id).execution_options(synchronize_session=False))
    return done.scalar() is not None


def count_alerts_by_monitor(session: Session) -> pd.DataFrame:
    """Per dataset and monitor: alerts, still unresolved, resolved by a person (not
    auto-resolved), resolved as false positive, and the span of partitions they were about
    (the raw material of noise statistics)."""
    import pandas as pd

    by_person = (Alert.status == AlertStatus.resolved) & (Alert.resolution != "auto")
    rows = session.execute(select(
        Dataset.name, Alert.monitor, func.count(Alert.id),
        func.sum(case((Alert.status != AlertStatus.resolved, 1), else_=0)),
        func.sum(case((by_person, 1), else_=0)),
        func.sum(case((Alert.resolution == "false_positive", 1), else_=0)),
        func.min(Alert.partition), func.max(Alert.partition),
    ).join(Dataset, Dataset.id == Alert.dataset_id).group_by(Dataset.name, Alert.monitor)
        .order_by(Dataset.name, Alert.monitor)).all()
    return pd.DataFrame(rows, columns=["dataset", "monitor", "alerts", "unresolved", "judged",
                                       "false_positive", "first_partition", "last_partition"])


def partition_spans(session: Session) -> dict[str, tuple[dt.date, dt.date]]:
    """Each dataset's first and last delivered partition, whatever the batches' status."""
    rows = session.execute(select(Dataset.name, func.min(Batch.partition), func.max(Batch.partition))
                           .join(Batch, Batch.dataset_id == Dataset.id).group_by(Dataset.name)).all()
    return {name: (first, last) for name, first, last in rows}


# ---- the dashboard's overview and alert triage -----------------------------------------
# Aggregates and pages in SQL, so the pages stay fast at 10k alerts. Mutes are globs matched
# in Python, but only on an alert's labels: the caller matches them against the few distinct
# label sets (`count_alerts_by_labels`) and hands the muted ones back as `AlertFilter.hidden`.
# `AlertFilter`, `count_alerts` and `list_alert_page` serve the dashboard's table until it
# calls `monitors.lifecycle.alerts.alert_page` (the one alert query, below); then they go.

ALERT_PAGE_COLUMNS = ["id", "severity", "status", "dataset", "column", "monitor", "detector",
                      "partition", "message", "occurrences", "value", "expected", "lower",
                      "upper", "resolution", "first_seen_at", "last_seen_at", "caused_by"]
# an alert's labels, in this order wherever a label set is a tuple
LABELS = ("dataset", "column", "monitor", "detector", "severity")


def count_firings_per_day(session: Session, since: dt.date) -> pd.DataFrame:
    """Firings (one per alert and partition) per partition day and severity since a day."""
    import pandas as pd

    rows = session.execute(
        select(AlertOccurrence.partition, Alert.severity, func.count(AlertOccurrence.id))
        .join(Alert, Alert.id == AlertOccurrence.alert_id)
        .where(AlertOccurrence.partition >= since)
        .group_by(AlertOccurrence.partition, Alert.severity)
        .order_by(AlertOccurrence.partition)).all()
    return pd.DataFrame(rows, columns=["partition", "severity", "firings"])


def list_partition_batches(session: Session, partition: dt.date) -> pd.DataFrame:
    """Every dataset with its deliveries for one partition (none: a row with no batch)."""
    import pandas as pd

    rows = session.execute(
        select(Dataset.name, Dataset.deadline_hours, Dataset.paused, Batch.status, Batch.rows,
               Batch.arrived_at, Batch.reason)
        .outerjoin(Batch, and_(Batch.dataset_id == Dataset.id, Batch.partition == partition))
        .order_by(Dataset.name, Batch.id)).all()
    return pd.DataFrame(rows, columns=["dataset", "deadline_hours", "paused", "status", "rows",
                                       "arrived_at", "reason"])


def latest_alert_id(session: Session) -> int:
    return session.scalar(select(func.max(Alert.id))) or 0


def list_alerts_after(session: Session, alert_id: int, limit: int = 5) -> tuple[int, pd.DataFrame]:
    """How many alerts were opened after `alert_id`, and the newest few of them."""
    import pandas as pd

    count = session.scalar(select(func.count(Alert.id)).where(Alert.id > alert_id)) or 0
    rows = session.execute(
        select(Alert.id, Alert.severity, Dataset.name, Alert.monitor, Alert.message)
        .join(Dataset, Dataset.id == Alert.dataset_id).where(Alert.id > alert_id)
        .order_by(Alert.id.desc()).limit(limit)).all()
    return count, pd.DataFrame(rows, columns=["id", "severity", "dataset", "monitor", "message"])


# ---- alerts as the CLI and the dashboard list them: one query, filtered and paged in SQL ----
# The one rule for dates: `partition_from` and `partition_to` bound the alert's partition (the
# latest one it fired on), both days included. Mutes are globs; monitors.lifecycle.mutes resolves each
# active one into the label values it covers (`MuteCover`), so whether an alert is muted is
# decided, filtered on and paged in SQL too.


@dataclass(frozen=True, slots=True)
class MuteCover:
    """An active mute as SQL matches it: for each label it constrains, the values of that
    label it covers (None: a table-level alert's missing column). Labels it does not
    constrain are left out; every one given must match."""

    mute_id: int
    labels: tuple[tuple[str, tuple[str | None, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Which alerts to list. Empty tuples mean "any". `mutes`: the active mutes, oldest
    first (an alert names the first that covers it); `muted`: None lists all, False only
    those no mute covers, True only the covered ones."""

    statuses: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    monitors: tuple[str, ...] = ()
    partition_from: dt.date | None = None
    partition_to: dt.date | None = None
    mutes: tuple[MuteCover, ...] = ()
    muted: bool | None = None


_LABEL_COLUMNS = {"dataset": Dataset.name, "column": Alert.column, "monitor": Alert.monitor,
                  "detector": Alert.detector, "severity": Alert.severity}


def _among(column, values: Sequence[str | None]) -> Any:
    """`column` is one of `values`, NULL included when None is: false, never NULL, so the
    negation of a mute's condition is exact."""
    present = [v for v in values if v is not None]
    parts = [and_(column.is_not(None), column.in_(present))] if present else []
    if None in values:
        parts.append(column.is_(None))
    return or_(false(), *parts)


def _covered(cover: MuteCover) -> Any:
    return and_(true(), *(_among(_LABEL_COLUMNS[label], values) for label, values in cover.labels))


def _alert_query_conditions(query: AlertQuery) -> list:
    conditions = []
    if query.statuses:
        conditions.append(Alert.status.in_(query.statuses))
    if query.severities:
        conditions.append(Alert.severity.in_(query.severities))
    if query.datasets:
        conditions.append(Dataset.name.in_(query.datasets))
    if query.monitors:
        conditions.append(Alert.monitor.in_(query.monitors))
    if query.partition_from is not None:
        conditions.append(Alert.partition >= query.partition_from)
    if query.partition_to is not None:
        conditions.append(Alert.partition <= query.partition_to)
    if query.muted is not None:
        covered = or_(false(), *(_covered(c) for c in query.mutes))
        conditions.append(covered if query.muted else not_(covered))
    return conditions


def list_alert_rows(session: Session, query: AlertQuery, *, limit: int | None = None,
                    offset: int = 0) -> list[tuple[Alert, str, int | None]]:
    """(alert, its dataset's name, the id of the first mute covering it or None), last seen
    first; ties broken by id, newest first, so pages never overlap."""
    mute_id = (case(*((_covered(c), c.mute_id) for c in query.mutes), else_=None)
               if query.mutes else null())
    statement = (select(Alert, Dataset.name, mute_id.label("mute_id"))
                 .join(Dataset, Dataset.id == Alert.dataset_id)
                 .where(*_alert_query_conditions(query))
                 .order_by(Alert.last_seen_at.desc(), Alert.id.desc())
                 .offset(offset or None).limit(limit))
    return [(alert, name, covering) for alert, name, covering in session.execute(statement).all()]


def count_alert_rows(session: Session, query: AlertQuery) -> int:
    """How many alerts `list_alert_rows` would list over all its pages."""
    statement = (select(func.count(Alert.id)).select_from(Alert)
                 .join(Dataset, Dataset.id == Alert.dataset_id)
                 .where(*_alert_query_conditions(query)))
    return session.scalar(statement) or 0


def list_label_values(session: Session, label: str) -> list[str | None]:
    """The values an alert label takes in the store (dataset: every dataset's name), what a
    mute's glob is matched against."""
    column = _LABEL_COLUMNS[label]
    statement = select(Dataset.name) if label == "dataset" else select(column).distinct()
    return list(session.scalars(statement).all())


def count_alerts_by_state(session: Session, query: AlertQuery) -> list[tuple]:
    """(dataset, severity, status, muted, caused, alerts, latest last_seen_at) for the alerts
    `query` selects, `muted` decided in SQL by `query.mutes`, `caused` when an alert is part
    of another's incident: a few dozen rows however many alerts there are, what health and
    the counts are made of."""
    covered = or_(false(), *(_covered(c) for c in query.mutes))
    muted = case((covered, 1), else_=0)
    caused = case((Alert.caused_by.is_not(None), 1), else_=0)
    statement = (select(Dataset.name, Alert.severity, Alert.status, muted, caused,
                        func.count(Alert.id), func.max(Alert.last_seen_at))
                 .join(Dataset, Dataset.id == Alert.dataset_id)
                 .where(*_alert_query_conditions(query))
                 .group_by(Dataset.name, Alert.severity, Alert.status, muted, caused))
    return [tuple(row) for row in session.execute(statement).all()]


def read_triage_marker(session: Session) -> str:
    """A fingerprint of the triage state that any write to it moves, from any process: a new
    alert or firing, a repeat, an event on a timeline (acknowledged, resolved, commented,
    reopened, muted), a mute added or expired. Six index look-ups; caches of alert views are
    keyed by it, so a page never shows a state older than the one it asked for."""
    parts = session.execute(select(
        select(func.max(Alert.id)).scalar_subquery(),
        select(func.max(Alert.last_seen_at)).scalar_subquery(),
        select(func.max(AlertEvent.id)).scalar_subquery(),
        select(func.max(AlertOccurrence.id)).scalar_subquery(),
        select(func.max(MuteRule.id)).scalar_subquery(),
        select(func.count(MuteRule.expired_by)).scalar_subquery())).one()
    return "/".join("" if part is None else str(part) for part in parts)


def read_pipeline_marker(session: Session) -> str:
    """A fingerprint of the queue and the schedules that any change moves, from any process:
    a run requested, claimed, finished or cancelled, a schedule paused or resumed. What the
    pipeline page's cached schedules are keyed by, so a finished run is not shown queued."""
    parts = session.execute(select(
        select(func.max(Run.id)).scalar_subquery(),
        select(func.max(Run.started_at)).scalar_subquery(),
        select(func.max(Run.finished_at)).scalar_subquery(),
        select(func.count(Dataset.id)).where(Dataset.paused).scalar_subquery())).one()
    return "/".join("" if part is None else str(part) for part in parts)
