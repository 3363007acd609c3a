"""Ingestion: a batch lands whole, profiled in the same pass, or is quarantined with a reason.

Nothing of a batch reaches the store until the whole stream has been read and checked, so
a quarantined batch leaves no metric rows behind. Re-delivering a partition supersedes the
batch in force; delivering the same content again changes nothing.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitors.config import DATASET_NAME
from monitors.contract import Contract, infer_contract, schema_fingerprint
from monitors.errors import Invalid
from monitors.faults import kill_point
from monitors.intake.freshness import arrival_delay_hours, check_partition_window
from monitors.intake.profile import BatchProfiler, MetricValue
from monitors.intake.readers import (
    DEFAULT_LIMITS,
    ContractViolation,
    detect_format,
    fingerprint_file,
    read_file,
    read_schema,
)
from monitors.settings import Limits
from store import queries
from store.locks import lock_dataset, lock_for_write
from store.models import Batch, BatchStatus, Dataset, DatasetKind

PARTITION_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
MAX_REASON = 1000
# the PostgreSQL advisory lock class of creating a dataset (monitors.pipeline.queue takes class 4)
CREATING_DATASETS = 5


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    dataset: str
    partition: dt.date
    status: str            # ingested | quarantined | unchanged
    batch_id: int | None
    rows: int | None
    reason: str | None = None


def partition_from_name(path: Path) -> dt.date | None:
    """The one YYYY-MM-DD date in the file's name; None when there is none, it is not a
    calendar date, or the name holds two different dates (taking the first would land a
    file on a day it may not be for, superseding that day's good batch)."""
    found = set(PARTITION_IN_NAME.findall(path.name))
    if len(found) != 1:
        return None
    try:
        return dt.date.fromisoformat(found.pop())
    except ValueError:
        return None


def _no_partition(path: Path) -> Invalid:
    found = sorted(set(PARTITION_IN_NAME.findall(path.name)))
    if len(found) > 1:
        return Invalid(f"{path.name}: the file name holds {len(found)} dates ({', '.join(found)}): "
                       "give the partition with --partition")
    match = PARTITION_IN_NAME.search(path.name)
    if match:
        return Invalid(f"{path.name}: {match.group(1)} in the file name is not a calendar date "
                       "(give the partition with --partition, or rename the file)")
    return Invalid(f"{path.name}: no partition given and no YYYY-MM-DD in the file name")


def arrival_time(path: Path) -> dt.datetime:
    """When the upstream delivered the file: its modification time."""
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)


def create_dataset(session: Session, name: str, path: Path, *, kind: str = DatasetKind.data,
                   partition_key: str = "partition", limits: Limits = DEFAULT_LIMITS) -> Dataset:
    """A new dataset whose contract is inferred from this first batch, then frozen.
    `limits`: the settings' bounds on what one file may cost (monitors.settings.Limits).
    The name follows the config's rule (a declared dataset and a created one are named
    alike, and both stores take it)."""
    if not re.fullmatch(DATASET_NAME, name):
        shown = repr(name[:60]) + ("…" if len(name) > 60 else "")
        raise Invalid(f"dataset name {shown}: 1 to 200 letters, digits, '_', '.' or '-'")
    fmt = detect_format(path)
    if fmt is None:
        raise ValueError(f"{path.name}: unknown file format (csv, csv.gz, parquet, jsonl)")
    contract = infer_contract(read_schema(path, fmt, limits))
    dataset = Dataset(name=name, kind=kind, source=str(path.parent), format=fmt,
                      partition_key=partition_key, contract=contract.to_json())
    session.add(dataset)
    session.flush()
    return dataset


def find_or_create_dataset(session: Session, name: str, path: Path, *,
                           limits: Limits = DEFAULT_LIMITS) -> tuple[Dataset, bool]:
    """`ingest --create`: the dataset called `name`, made from `path` when there is none
    (True). Two creators racing on one name make it once: the second waits for the first
    (SQLite's writer lock; a PostgreSQL transaction lock on creating datasets), then finds
    its dataset instead of failing on the unique name."""
    lock_for_write(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CREATING_DATASETS, 0)))
    found = queries.get_dataset(session, name)
    if found is not None:
        return found, False
    return create_dataset(session, name, path, limits=limits), True


def ingest_file(session: Session, dataset: Dataset, path: Path, partition: dt.date | None = None,
                arrived_at: dt.datetime | None = None, *,
                contract: Contract | None = None, limits: Limits = DEFAULT_LIMITS) -> IngestOutcome:
    """Land one file as the batch of `partition` (default: the date in the file's name).
    `contract`: the dataset's, when the caller parsed it already (a run, once for all its
    partitions). `limits`: the settings' bounds on what one file may cost; a file past one
    is quarantined with the limit named."""
    partition = partition or partition_from_name(path)
    if partition is None:
        raise _no_partition(path)
    check_partition_window(partition)
    fmt = detect_format(path) or dataset.format
    contract = contract or Contract.model_validate(dataset.contract)
    written = _stamp(path)

    resolved = []  # a labels batch: its model outputs' predictions joined with the outcomes
    estimated = []  # a model output's score histogram and estimated performance

    def profile() -> list[MetricValue]:
        metrics = _profile_stream(read_file(path, fmt, contract, limits, dictionaries=True), contract)
        # what was read may be a prefix of what the upstream is still writing
        if _stamp(path) != written:
            raise ContractViolation(f"{path.name}: the file changed while it was being read "
                                    "(still being written upstream?)")
        if dataset.kind == DatasetKind.labels:
            resolved.extend(_resolve_labels(session, dataset, path, fmt, contract, partition, limits))
        elif dataset.labels:  # a model output with labels: what its estimate reads
            estimated.extend(_score_rows(session, dataset, path, fmt, contract, partition, limits))
        return metrics

    outcome = _land(session, dataset, partition, fingerprint_file(path), str(path),
                    arrived_at or arrival_time(path), profile, contract)
    if outcome.status == "ingested" and resolved:
        from monitors.judge.performance import store_performance

        store_performance(session, outcome.batch_id, resolved)
    if outcome.status == "ingested" and estimated:
        queries.add_metrics(session, session.get(Batch, outcome.batch_id), estimated)
    return outcome


def _score_rows(session: Session, dataset: Dataset, path: Path, fmt: str, contract: Contract,
                partition: dt.date, limits: Limits) -> list:
    from monitors.intake.labels import link_of, read_table
    from monitors.judge.performance import prediction_rows

    link = link_of(dataset)
    names = [c.name for c in contract.columns]
    if link.score not in names:
        raise ContractViolation(f"{path.name}: no score column {link.score!r} (labels.score)")
    columns = [link.score, *([link.version] if link.version in names else [])]
    return prediction_rows(session, dataset, partition,
                           read_table(path, fmt, contract, limits, columns))


def _resolve_labels(session: Session, dataset: Dataset, path: Path, fmt: str, contract: Contract,
                    partition: dt.date, limits: Limits) -> list:
    """A labels batch joined with the predictions it resolves (monitors.intake.labels); a batch
    that resolves none, or repeats a key, is a ContractViolation: quarantined, nothing kept."""
    from monitors.intake.labels import LabelsRefused, read_table, resolve

    table = read_table(path, fmt, contract, limits, [c.name for c in contract.columns])
    try:
        return resolve(session, dataset, partition, table, limits)
    except LabelsRefused as exc:
        raise ContractViolation(f"{path.name}: {exc}") from None


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def ingest_sql(session: Session, dataset: Dataset, partition: dt.date,
               arrived_at: dt.datetime | None = None, *,
               contract: Contract | None = None) -> IngestOutcome:
    """Land one partition of a SQL table (rows where partition_key = partition), profiled by
    aggregate queries inside the source database: the rows never leave it.

    The fingerprint hashes the profile (row count included) rather than the rows, which would
    have to be fetched to be hashed, and no checksum aggregate exists in every dialect. Content
    that changes no metric is then "unchanged": a redelivery nothing could tell apart. Values
    enter the hash at 12 significant digits, so that a warehouse summing in another order
    (a parallel plan) does not make the same content look new. `contract` as in
    `ingest_file`."""
    check_partition_window(partition)
    contract = contract or Contract.model_validate(dataset.contract)
    table = dataset.table_name or dataset.name
    metrics: list[MetricValue] = []
    violation: ContractViolation | None = None
    # an unreachable source raises Unreachable from here: an outage lands and quarantines
    # nothing, and the run says so and leaves the partition for the next one
    # imported here: a file's ingest (the CLI's common case) has no use for SQL pushdown
    from monitors.intake.pushdown import profile_sql_partition, source_engine

    engine = source_engine(dataset.source)  # ${NAME}: the secret, read only now
    try:
        metrics = profile_sql_partition(engine, table, dataset.partition_key, partition, contract)
    except ContractViolation as exc:
        violation = exc
    finally:
        engine.dispose()
    digest = hashlib.sha256(str(violation or "").encode())
    for m in metrics:
        digest.update(f"{m.column}\x1f{m.metric}\x1f{m.key}\x1f{m.value:.12g}\x1e".encode())

    def profile() -> list[MetricValue]:
        if violation is not None:
            raise violation
        return metrics

    return _land(session, dataset, partition, digest.hexdigest(), f"{table}@{partition}",
                 arrived_at or dt.datetime.now(dt.UTC), profile, contract)


def _profile_stream(chunks: Iterable[pa.RecordBatch | pa.Table], contract: Contract) -> list[MetricValue]:
    profiler = BatchProfiler(contract.arrow_schema(), categorical=contract.categorical())
    for chunk in chunks:
        profiler.update(chunk)
        kill_point("ingest.profiling")
    return profiler.metrics()


def _land(session: Session, dataset: Dataset, partition: dt.date, fingerprint: str, source: str,
          arrived_at: dt.datetime, profile: Callable[[], list[MetricValue]],
          contract: Contract) -> IngestOutcome:
    # a first look, without the lock, spares profiling content that is already here
    known = _same_content(session, dataset.id, partition, fingerprint)
    if known is not None:
        return IngestOutcome(dataset.name, partition, "unchanged", known.id, known.rows, known.reason)

    metrics: list[MetricValue] = []
    reason = None
    try:
        metrics = profile()
    except ContractViolation as exc:
        reason = str(exc)
    rows = next((int(m.value) for m in metrics if m.column is None and m.metric == "row_count"), 0)
    if reason is None and rows == 0:
        reason = f"{Path(source).name}: no rows (a header alone is not a batch)"

    # Decide under the dataset's write lock, from what is in force now: another delivery of
    # this partition may have landed while this one was profiled (a retrying upstream, a
    # worker and a person), and deciding from the first look would leave two batches in
    # force. Profiling stays outside the lock, so a long file does not stall other writers.
    lock_dataset(session, dataset.id)
    known = _same_content(session, dataset.id, partition, fingerprint)
    if known is not None:
        return IngestOutcome(dataset.name, partition, "unchanged", known.id, known.rows, known.reason)
    current = queries.get_current_batch(session, dataset.id, partition)

    batch = Batch(dataset_id=dataset.id, partition=partition, source=source,
                  fingerprint=fingerprint, arrived_at=arrived_at)
    if reason is not None:
        batch.status, batch.reason = BatchStatus.quarantined, _storable(reason)[:MAX_REASON]
        session.add(batch)
        session.flush()
        return IngestOutcome(dataset.name, partition, "quarantined", batch.id, None, batch.reason)

    if current is not None:
        queries.supersede_batch(session, current)
    batch.status, batch.rows = BatchStatus.ingested, rows
    batch.columns = len(contract.columns)
    batch.schema_fingerprint = schema_fingerprint(contract.arrow_schema())
    session.add(batch)
    session.flush()
    queries.add_metrics(session, batch, _metric_rows(metrics, partition, arrived_at))
    kill_point("ingest.writing")
    return IngestOutcome(dataset.name, partition, "ingested", batch.id, rows)


def _same_content(session: Session, dataset_id: int, partition: dt.date,
                  fingerprint: str) -> Batch | None:
    """The batch in force, or the last delivery, when it holds this very content."""
    for known in (queries.get_current_batch(session, dataset_id, partition),
                  queries.get_latest_batch(session, dataset_id, partition)):
        if known is not None and known.fingerprint == fingerprint and known.status != BatchStatus.superseded:
            return known
    return None


def _storable(reason: str) -> str:
    """A reason quotes the data it choked on; PostgreSQL refuses NUL characters in text and
    lone surrogates (undecodable bytes in Arrow's messages) don't encode, so both are escaped."""
    return reason.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _metric_rows(metrics: Iterable, partition: dt.date, arrived_at: dt.datetime):
    for m in metrics:
        yield m.column, m.metric, m.key, m.value
    yield None, "arrival_delay_hours", "", arrival_delay_hours(partition, arrived_at)
