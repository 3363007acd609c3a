"""The run queue: a queued Run row is a run request, claimed by workers under a lease.

Every state change is a single conditional statement (`UPDATE ... WHERE status=... RETURNING`),
so concurrent workers and CLI calls never step on each other on SQLite or PostgreSQL, and a
SQLite write never has to upgrade a read transaction (PLATFORM.md: that fails under load).
The caller owns the transaction, except in `claim_next` given an engine.
"""
from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session, aliased

from monitors.errors import Invalid, NotFound, Refused
from monitors.intake.freshness import check_partition_window
from store import queries
from store.models import ConfigVersion, Dataset, Run, RunStatus, utcnow

FINISHED = (RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled)
# a run whose worker keeps dying (a batch that runs it out of memory, say) must not loop forever
MAX_ATTEMPTS = 3


class RunTrigger(StrEnum):
    schedule = "schedule"
    manual = "manual"
    backfill = "backfill"
    demo = "demo"


def _today() -> dt.date:
    return utcnow().date()


def request_run(session: Session, dataset: Dataset | None, partition_from: dt.date,
                partition_to: dt.date, *, trigger: str, by: str | None,
                retry_of: int | None = None, today: dt.date | None = None) -> Run:
    """Queue a run of `dataset` over [partition_from, partition_to]; a request identical to one
    still queued returns that one, so a double click or a repeated tick queues nothing new."""
    if dataset is None or dataset.id is None:
        raise NotFound("unknown dataset: a run needs a dataset the store knows")
    if partition_from > partition_to:
        raise Invalid(f"empty range: {partition_from} is after {partition_to}")
    today = today or _today()
    check_partition_window(partition_from, today)  # 0001-01-01: a typo, not 700k days to run
    if partition_to > today:
        raise Invalid(f"partition {partition_to} is in the future (today is {today}, UTC)")
    trigger = RunTrigger(trigger)
    if session.get_bind().dialect.name == "postgresql":
        # under READ COMMITTED two identical requests could both pass NOT EXISTS below;
        # SQLite runs the statement under its write lock, so it needs nothing
        session.execute(select(func.pg_advisory_xact_lock(4, dataset.id)))
    same = and_(Run.dataset_id == dataset.id, Run.partition_from == partition_from,
                Run.partition_to == partition_to, Run.status == RunStatus.queued)
    now = utcnow()
    values = {"dataset_id": dataset.id, "status": RunStatus.queued.value, "trigger": trigger.value,
              "partition_from": partition_from, "partition_to": partition_to,
              "progress_done": 0, "progress_total": (partition_to - partition_from).days + 1,
              "requested_by": by, "requested_at": now, "retry_of": retry_of,
              "inputs": {}, "stages": {}, "log": ""}
    columns = list(values)
    source = select(*[literal(v, type_=Run.__table__.c[k].type) for k, v in values.items()]) \
        .where(~exists().where(same))
    statement = Run.__table__.insert().from_select(columns, source).returning(Run.__table__.c.id)
    new_id = session.execute(statement).scalar()
    if new_id is None:
        return session.scalars(select(Run).where(same).order_by(Run.id).limit(1)).one()
    return session.get(Run, new_id)


def _claimable(now: dt.datetime, dataset_id: int | None):
    """The first queued run whose dataset has no live run and no older queued one.

    "No older queued one" keeps each dataset's runs in request order, and it is what makes the
    claim safe on PostgreSQL: a worker that skips a locked head-of-line run cannot take the
    run behind it instead, so two runs of one dataset are never claimed at once."""
    candidate, other = aliased(Run), aliased(Run)
    blocked = exists().where(
        other.dataset_id == candidate.dataset_id, other.id != candidate.id,
        or_(and_(other.status == RunStatus.running, other.lease_expires_at > now),
            and_(other.status == RunStatus.queued, other.id < candidate.id)))
    query = select(candidate.id).where(candidate.status == RunStatus.queued, ~blocked)
    if dataset_id is not None:
        query = query.where(candidate.dataset_id == dataset_id)
    # SQLite has no row locks and drops this clause; PostgreSQL skips rows others are claiming
    return (query.order_by(candidate.id).limit(1)
            .with_for_update(skip_locked=True, of=candidate).scalar_subquery())


def claim_next(engine_or_session: Engine | Session, worker_id: str, lease: dt.timedelta, *,
               dataset_id: int | None = None, now: dt.datetime | None = None) -> Run | None:
    """Claim the oldest runnable queued run for `worker_id`, in one statement; None when
    there is nothing to run (or only runs of datasets that are busy)."""
    now = now or utcnow()
    statement = (
        update(Run)
        .where(Run.id == _claimable(now, dataset_id), Run.status == RunStatus.queued)
        .values(status=RunStatus.running, claimed_by=worker_id, lease_expires_at=now + lease,
                started_at=now, finished_at=None, error=None)
        .returning(Run)
        .execution_options(synchronize_session=False)
    )
    if isinstance(engine_or_session, Session):
        return engine_or_session.scalars(statement).one_or_none()
    with Session(engine_or_session, expire_on_commit=False) as session, session.begin():
        return session.scalars(statement).one_or_none()


def renew_lease(session: Session, run_id: int, worker_id: str, lease: dt.timedelta,
                now: dt.datetime | None = None) -> bool:
    """Extend a running run's lease; False when the run is no longer this worker's (it was
    declared lost and re-queued, or finished): the worker should then stop working on it."""
    now = now or utcnow()
    renewed = session.execute(
        update(Run).where(Run.id == run_id, Run.status == RunStatus.running,
                          Run.claimed_by == worker_id)
        .values(lease_expires_at=now + lease).returning(Run.id)
        .execution_options(synchronize_session=False)).scalar()
    return renewed is not None


def finish(session: Session, run_id: int, status: str, error: str | None = None, *,
           now: dt.datetime | None = None) -> bool:
    """Give a running run its final status; False when it was not running any more."""
    status = RunStatus(status)
    if status not in FINISHED:
        raise Invalid(f"{status} is not a final status (one of {', '.join(FINISHED)})")
    done = session.execute(
        update(Run).where(Run.id == run_id, Run.status == RunStatus.running)
        .values(status=status, error=error, finished_at=now or utcnow(), lease_expires_at=None)
        .returning(Run.id).execution_options(synchronize_session=False)).scalar()
    return done is not None


def release(session: Session, run_id: int, worker_id: str) -> bool:
    """Hand a running run back to the queue (a worker stopping before it is done), so the
    next worker picks it up first instead of waiting for the lease to run out."""
    released = session.execute(
        update(Run).where(Run.id == run_id, Run.status == RunStatus.running,
                          Run.claimed_by == worker_id)
        .values(status=RunStatus.queued, claimed_by=None, lease_expires_at=None, started_at=None,
                log=Run.log + f"{utcnow().isoformat(timespec='seconds')} released by {worker_id} "
                              "(worker stopping)\n")
        .returning(Run.id).execution_options(synchronize_session=False)).scalar()
    return released is not None


def cancel(session: Session, run_id: int, by: str) -> Run:
    """Cancel a queued run. A running or finished one cannot be: ValueError saying why."""
    if not by:
        raise Refused("cancelling a run needs a name (--by)")
    now = utcnow()
    cancelled = session.execute(
        update(Run).where(Run.id == run_id, Run.status == RunStatus.queued)
        .values(status=RunStatus.cancelled, finished_at=now, error=f"cancelled by {by}",
                log=Run.log + f"{now.isoformat(timespec='seconds')} cancelled by {by}\n")
        .returning(Run.id).execution_options(synchronize_session=False)).scalar()
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"no run {run_id}")
    if cancelled is None:
        if run.status == RunStatus.running:
            raise Refused(f"run {run_id} is running (claimed by {run.claimed_by}); "
                          "only queued runs can be cancelled")
        raise Refused(f"run {run_id} is already {run.status}; only queued runs can be cancelled")
    return run


def _attempts(session: Session, run: Run) -> int:
    count, previous = 1, run.retry_of
    while previous is not None and count <= MAX_ATTEMPTS:
        count += 1
        previous = session.scalar(select(Run.retry_of).where(Run.id == previous))
    return count


def recover_stale(session: Session, now: dt.datetime | None = None) -> list[tuple[Run, Run | None]]:
    """Runs left `running` by a worker that died (lease expired): failed, with the reason, and
    re-queued as a fresh copy (up to MAX_ATTEMPTS in a chain). Returns (failed, copy) pairs."""
    now = now or utcnow()
    # the write comes first: whoever flips a run to failed owns its recovery, and on SQLite
    # the statement takes the write lock before it reads
    stale = session.execute(
        update(Run).where(Run.status == RunStatus.running, Run.lease_expires_at <= now)
        .values(status=RunStatus.failed, finished_at=now)
        .returning(Run.id, Run.lease_expires_at)
        .execution_options(synchronize_session=False)).all()
    recovered = []
    for run_id, expired_at in sorted(stale):
        run = session.get(Run, run_id, populate_existing=True)
        run.error = f"worker lost (lease expired at {expired_at.isoformat(timespec='seconds')})"
        attempts = _attempts(session, run)
        copy = None
        if attempts < MAX_ATTEMPTS:
            dataset = session.get(Dataset, run.dataset_id)
            copy = request_run(session, dataset, run.partition_from, run.partition_to,
                               trigger=run.trigger, by=run.requested_by, retry_of=run.id,
                               today=max(_today(), run.partition_to))
            run.log += (f"{now.isoformat(timespec='seconds')} worker {run.claimed_by} lost; "
                        f"re-queued as run {copy.id}\n")
        else:
            run.error += f"; not retried after {attempts} attempts"
        recovered.append((run, copy))
    session.flush()
    return recovered


def get_run(session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id, populate_existing=True)


def latest_attempt(session: Session, run_id: int) -> Run:
    """The run that carries a request on: itself, or the copy re-queued after it was lost."""
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"no run {run_id}")
    while (copy := session.scalar(select(Run).where(Run.retry_of == run.id))) is not None:
        run = copy
    return run


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_summary(run: Run, dataset_name: str, config_number: int | None = None) -> dict[str, Any]:
    """The CLI's and dashboard's view of a run (DESIGN.md's `runs list` fields, then more).
    `config_number`: the stored version (monitors.config_versions) of the run's config hash."""
    return {"id": run.id, "dataset": dataset_name, "status": run.status, "trigger": run.trigger,
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
            "error": run.error,
            "partition_from": _iso(run.partition_from), "partition_to": _iso(run.partition_to),
            "progress_done": run.progress_done, "progress_total": run.progress_total,
            "stages": run.stages, "requested_by": run.requested_by,
            "requested_at": _iso(run.requested_at), "claimed_by": run.claimed_by,
            "lease_expires_at": _iso(run.lease_expires_at), "retry_of": run.retry_of,
            "config_version": config_number, "config_hash": run.config_version,
            "code_version": run.code_version}


def list_runs(session: Session, dataset: str | None = None, status: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
    """The latest runs first, as plain dicts."""
    query = (select(Run, Dataset.name, ConfigVersion.number)
             .join(Dataset, Dataset.id == Run.dataset_id)
             .outerjoin(ConfigVersion, ConfigVersion.hash == Run.config_version))
    if dataset is not None:
        query = query.where(Dataset.name == dataset)
    if status is not None:
        query = query.where(Run.status == RunStatus(status))
    rows = session.execute(query.order_by(Run.id.desc()).limit(limit)).all()
    return [run_summary(run, name, number) for run, name, number in rows]


def watermark(session: Session, dataset: Dataset | int) -> dt.date | None:
    """The last partition a successful run covered: where scheduled catch-up starts."""
    dataset_id = dataset if isinstance(dataset, int) else dataset.id
    return session.scalar(select(func.max(Run.partition_to)).where(
        Run.dataset_id == dataset_id, Run.status == RunStatus.succeeded))


def request_catch_up(session: Session, dataset: Dataset, *, today: dt.date | None = None,
                     by: str = "scheduler", limit_days: int = 90) -> list[Run]:
    """A schedule tick: one run per partition after the watermark up to yesterday, skipping
    partitions a queued or running run already covers. Downtime is caught up by design,
    since an in-memory scheduler never replays the ticks it missed (PLATFORM.md)."""
    yesterday = (today or _today()) - dt.timedelta(days=1)
    # a dataset due days after its partition (labels: a week after the scoring) is caught
    # up to the last partition that can have arrived, or the watermark would pass it first
    yesterday -= dt.timedelta(days=int(dataset.deadline_hours // 24))
    last = watermark(session, dataset)
    first = yesterday if last is None else last + dt.timedelta(days=1)
    # a dataset left unscheduled for years should not flood the queue: the oldest wait
    first = max(first, yesterday - dt.timedelta(days=limit_days - 1))
    covered = session.execute(select(Run.partition_from, Run.partition_to).where(
        Run.dataset_id == dataset.id, Run.status.in_([RunStatus.queued, RunStatus.running]),
        Run.partition_to >= first, Run.partition_from <= yesterday)).all()
    requested, day = [], first
    while day <= yesterday:
        if not any(lo <= day <= hi for lo, hi in covered):
            requested.append(request_run(session, dataset, day, day, trigger=RunTrigger.schedule,
                                         by=by, today=yesterday + dt.timedelta(days=1)))
        day += dt.timedelta(days=1)
    return requested


def list_schedules(session: Session, now: dt.datetime) -> list[dict[str, Any]]:
    """Per dataset: its cron, paused or not, the next time the schedule fires (none while
    paused, or for a cron the scheduler refuses), the watermark, how many runs are queued
    and running, and the latest finished run's status and end (among the last 2000 runs)."""
    from monitors.pipeline.schedule import (
        cron_trigger,  # APScheduler: only where schedules are shown
    )

    runs = list_runs(session, limit=2000)
    schedules = []
    for dataset in queries.list_datasets(session):
        try:
            next_at = None if dataset.paused else cron_trigger(dataset.schedule).get_next_fire_time(None, now)
        except ValueError:
            next_at = None
        mine = [r for r in runs if r["dataset"] == dataset.name]
        finished = next((r for r in mine if r["finished_at"] is not None), None)
        schedules.append({
            "dataset": dataset.name, "schedule": dataset.schedule, "paused": dataset.paused,
            "next_run_at": next_at, "watermark": watermark(session, dataset),
            "queued": sum(r["status"] == RunStatus.queued for r in mine),
            "running": sum(r["status"] == RunStatus.running for r in mine),
            "last_status": finished["status"] if finished else None,
            "last_finished_at": finished["finished_at"] if finished else None})
    return schedules
