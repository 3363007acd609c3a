"""The store's tables as typed SQLAlchemy 2 models.

Portable types only (no SQLite-only features): the same models run on PostgreSQL.
Times are timezone-aware UTC and end in `_at`; partitions are dates.
"""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in and out, on every dialect (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps UTC times only")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class DatasetKind(StrEnum):
    data = "data"
    model_output = "model_output"
    labels = "labels"        # outcomes that resolve a model output's predictions, days later


class BatchStatus(StrEnum):
    ingested = "ingested"
    quarantined = "quarantined"
    superseded = "superseded"


class RunStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class AlertStatus(StrEnum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


# the statuses of an alert someone still has to deal with
UNRESOLVED = (AlertStatus.open, AlertStatus.acknowledged)
# the resolution of an alert its monitor resolved by passing (monitors.lifecycle.alerts)
AUTO_RESOLUTION = "auto"


class Severity(StrEnum):
    """Worst first: rankings (notification, health, charts) follow this order."""

    critical = "critical"
    warning = "warning"
    info = "info"


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default=DatasetKind.data)
    # a folder of landing files, or a SQLAlchemy URL for SQL sources
    source: Mapped[str] = mapped_column(Text, default="")
    format: Mapped[str] = mapped_column(String(20))  # csv | parquet | jsonl | sql
    table_name: Mapped[str | None] = mapped_column(String(300))  # sql sources
    partition_key: Mapped[str] = mapped_column(String(200), default="partition")
    # {"columns": [{"name", "type", "nullable"}], "frozen": bool, "inferred": bool}
    contract: Mapped[dict[str, Any]] = mapped_column(default=dict)
    schedule: Mapped[str] = mapped_column(String(100), default="0 6 * * *")
    # how long after the partition's day ends a batch is expected, in hours
    deadline_hours: Mapped[float] = mapped_column(Float, default=6.0)
    paused: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # lineage: the names of the datasets this one is built from (the config's `upstream`)
    upstream: Mapped[list[Any]] = mapped_column(default=list)
    # the clock of its first run: a partition due before then was not watched when it fell
    # due (a backfill of history), so its lateness is nobody's incident
    watched_since: Mapped[dt.datetime | None]
    # a model output's labels declaration (monitors.intake.labels.LabelsConfig), mirrored from the
    # config so that ingestion and the CLI resolve labels without reading the config file
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # the least severe alert that closes its partitions' gates (the config's `gate.holds_on`,
    # monitors.pipeline.gates), mirrored so that a sensor holding only a session reads it
    gate_holds_on: Mapped[str] = mapped_column(String(20), default="critical",
                                               server_default="critical")


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (Index("ix_batches_dataset_partition", "dataset_id", "partition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    partition: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="")  # file path or table/query
    fingerprint: Mapped[str] = mapped_column(String(64))  # sha256 of the content
    schema_fingerprint: Mapped[str | None] = mapped_column(String(64))
    arrived_at: Mapped[dt.datetime]
    ingested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Metric(Base):
    """One profile value of one batch: long format, so any metric is a time series."""

    __tablename__ = "metrics"
    __table_args__ = (
        Index("ix_metrics_series", "dataset_id", "column", "metric", "partition"),
        Index("ix_metrics_batch", "batch_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    partition: Mapped[dt.date] = mapped_column(Date)
    column: Mapped[str | None] = mapped_column(String(300))
    metric: Mapped[str] = mapped_column(String(50))
    key: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[float | None] = mapped_column(Float)


class Monitor(Base):
    __tablename__ = "monitors"
    __table_args__ = (UniqueConstraint("dataset_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    column: Mapped[str | None] = mapped_column(String(300))
    metric: Mapped[str | None] = mapped_column(String(50))
    detector: Mapped[str] = mapped_column(String(50))
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    severity: Mapped[str] = mapped_column(String(20), default=Severity.warning)
    owner: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(default=True)
    automatic: Mapped[bool] = mapped_column(default=False)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # the claim statement looks up queued runs and each dataset's running ones
        Index("ix_runs_status", "status"),
        Index("ix_runs_dataset_status", "dataset_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.queued)
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | manual | backfill | demo
    partition_from: Mapped[dt.date] = mapped_column(Date)
    partition_to: Mapped[dt.date] = mapped_column(Date)
    progress_done: Mapped[int] = mapped_column(default=0)
    progress_total: Mapped[int] = mapped_column(default=0)
    requested_by: Mapped[str | None] = mapped_column(String(200))
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None]
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    config_version: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)  # partition -> fingerprint
    stages: Mapped[dict[str, Any]] = mapped_column(default=dict)  # stage -> seconds
    log: Mapped[str] = mapped_column(Text, default="")
    # the run this one re-queues after its worker was lost: the chain bounds the attempts
    retry_of: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # what the run found, monitor by partition, and the clock it judged with: what a replay
    # (monitors.judge.replay) compares its own findings to
    findings: Mapped[list[Any]] = mapped_column(default=list)
    judged_at: Mapped[dt.datetime | None]


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_fingerprint", "fingerprint"),
        Index("ix_alerts_status_seen", "status", "last_seen_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    column: Mapped[str | None] = mapped_column(String(300))
    monitor: Mapped[str] = mapped_column(String(200))
    detector: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=AlertStatus.open)
    resolution: Mapped[str | None] = mapped_column(String(30))
    partition: Mapped[dt.date | None] = mapped_column(Date)
    value: Mapped[float | None] = mapped_column(Float)
    expected: Mapped[float | None] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float)
    upper: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurrences: Mapped[int] = mapped_column(default=1)
    config_version: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None]
    owner: Mapped[str | None] = mapped_column(String(200))
    # when a webhook last carried this alert: the repeat interval counts from it
    notified_at: Mapped[dt.datetime | None]
    # the root of the incident this alert is a knock-on of (monitors.lifecycle.incidents); None for a
    # root or an alert on its own
    caused_by: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    # split out of its incident by hand: never grouped again
    incident_split: Mapped[bool] = mapped_column(default=False)
    # what the latest firing was judged on: detector and options, the history window and
    # its points, config version, input fingerprints (monitors.config_versions.judged_on)
    judged_on: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class ConfigVersion(Base):
    """A distinct normal form of the monitors config, kept with who brought it in: the
    dashboard user who saved it, or "file edit" (a hand edit, with the file's mtime), seen
    at the next run or worker sync. `number` is v1, v2, ... in order of first sight."""

    __tablename__ = "config_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    introduced_by: Mapped[str] = mapped_column(String(200))
    file_mtime_at: Mapped[dt.datetime | None]
    introduced_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MuteRule(Base):
    """A silence. Its state (pending, active, expired) is derived from the times."""

    __tablename__ = "mute_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    matchers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    starts_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[dt.datetime]
    # who ended it early (expiring moves ends_at to that moment)
    expired_by: Mapped[str | None] = mapped_column(String(200))


class AlertEvent(Base):
    """The audit trail: every change to an alert, with who, when and a note."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert", "alert_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)


class AlertOccurrence(Base):
    """One partition on which an alert's fingerprint fired. Keyed by partition so that
    re-evaluating a partition (a rerun, a retry) never counts twice; `digest` tells a
    repeated finding from a changed one, and `cleared_at` marks a partition that passed
    on a later evaluation (a corrected batch)."""

    __tablename__ = "alert_occurrences"
    __table_args__ = (UniqueConstraint("alert_id", "partition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    partition: Mapped[dt.date] = mapped_column(Date)
    digest: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[dt.datetime | None]


class GateVerdict(StrEnum):
    safe = "safe"
    held = "held"


class GateChange(Base):
    """The audit trail of gates (monitors.pipeline.gates): one row each time a partition's verdict
    changes (safe -> held, held -> safe); the verdict itself is derived from alerts."""

    __tablename__ = "gate_changes"
    __table_args__ = (Index("ix_gate_changes_partition", "dataset_id", "partition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    partition: Mapped[dt.date] = mapped_column(Date)
    verdict: Mapped[str] = mapped_column(String(10))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    why: Mapped[str] = mapped_column(Text)
    alert_ids: Mapped[list[Any]] = mapped_column(default=list)  # the alerts holding it


class Baseline(Base):
    """A "new normal" someone accepted: from `from_partition` on, the monitors of one
    metric of one column judge only the history at or after it. Withdrawing it keeps the
    row (who and when) for the audit; only rows without `removed_at` are in force."""

    __tablename__ = "baselines"
    __table_args__ = (Index("ix_baselines_dataset", "dataset_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    column: Mapped[str | None] = mapped_column(String(300))
    metric: Mapped[str] = mapped_column(String(50))
    from_partition: Mapped[dt.date] = mapped_column(Date)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
    removed_by: Mapped[str | None] = mapped_column(String(200))
    removed_at: Mapped[dt.datetime | None]


class StageState(StrEnum):
    queued = "queued"          # to run once the stages before it are done
    running = "running"        # claimed by a worker, whose lease says it is alive
    held = "held"              # the partition's gate is closed (held_by: the first alert)
    succeeded = "succeeded"
    failed = "failed"          # every attempt failed: exit_code and log_tail say how
    overridden = "overridden"  # released past a closed gate by an operator; runs next
    skipped = "skipped"        # passed over by an operator: the next stage may run


class StageRun(Base):
    """One stage of a dataset on one partition (monitors.pipeline.stages): its state, attempts, the
    last attempt's exit code and log tail, and the input fingerprints it was run on."""

    __tablename__ = "stage_runs"
    __table_args__ = (UniqueConstraint("dataset_id", "partition", "stage"),
                      Index("ix_stage_runs_state", "state"))

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    partition: Mapped[dt.date] = mapped_column(Date)
    stage: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(default=0)  # its place in the dataset's stages
    command: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), default=StageState.queued)
    held_by: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(default=0)
    exit_code: Mapped[int | None]
    log_tail: Mapped[str] = mapped_column(Text, default="")
    log_path: Mapped[str | None] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)  # dataset -> batch fingerprint
    note: Mapped[str | None] = mapped_column(Text)  # the last thing that happened to it, and why
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None]
    queued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class StageAction(Base):
    """The audit trail of what people did to stages: an override of a partition's gate
    (with the alerts it let past), a rerun from a stage, a skip; who, when and why."""

    __tablename__ = "stage_actions"
    __table_args__ = (Index("ix_stage_actions_partition", "dataset_id", "partition"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    partition: Mapped[dt.date] = mapped_column(Date)
    stage: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))  # override | run | skip
    by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    alert_ids: Mapped[list[Any]] = mapped_column(default=list)  # an override: the alerts let past
