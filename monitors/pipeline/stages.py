"""Stages: the commands that build on a verified partition (features, scoring, delivery),
declared per dataset in the config (`monitors.stage_config`) and run by the worker.

A stage run is stored per (dataset, partition, stage) (`StageRun`). When a run has verified
a partition, `plan_stages` files its dataset's stages for it: `held` (by the first alert
that holds the partition's gate, `monitors.pipeline.gates`) or `queued`. The worker's stage loop
(`run_due_stages`) takes, for each partition, the first stage not yet done: a held one is
looked at again (it runs by itself once the gate is safe: the alert resolved, muted, passed
on a corrected rerun, or let past by an operator's override), a queued one is claimed and
run, and so is a `running` one whose worker went silent (its lease ran out: the worker died
mid-stage, so the stage runs again). The stages of a partition run in order, each after
the one before succeeded (or was skipped); a failed stage stops its partition's chain.

A stage is a subprocess (no shell), started in MONITORS_HOME with MONITORS_DATASET and
MONITORS_PARTITION set, killed at its timeout, tried again up to its `retries`; its output
goes to a log file per attempt (MONITORS_HOME/stages/<dataset>/<partition>/) whose tail is
kept on the row with the exit code. While it runs its worker renews a lease on the row.

The contract for a stage's command: **its outputs must be safe to write twice** (write to a
temporary file in the same folder, then rename it over the target). A stage whose worker
died is run again from the start, and the first attempt may have written some or all of
its outputs before it died.

People act on stages through `override` (with a reason: the closed gate is let past for
the alerts holding it now), `rerun` (from a stage on) and `skip`; each is kept in
`StageAction`, with who, when and why.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from monitors.datasets import find_dataset
from monitors.errors import Invalid, NotFound, Refused
from monitors.pipeline.gates import evaluate as evaluate_gate
from monitors.pipeline.lineage import Lineage, read_lineage
from monitors.settings import Settings
from monitors.stage_config import StageConfig
from store import queries
from store.models import Dataset, StageAction, StageRun, StageState, utcnow

log = logging.getLogger("monitors.pipeline.stages")

LOG_TAIL_BYTES = 4000
STOP_CHECK = 0.5  # seconds between looks at a running stage (stop asked? timed out?)
DONE = (StageState.succeeded, StageState.skipped)       # the next stage may run
WAITING = (StageState.queued, StageState.held, StageState.overridden)


# ---- planning: after verification -------------------------------------------------------

def plan_stages(session: Session, config, dataset_id: int, partitions: Iterable[dt.date], *,
                now: dt.datetime) -> None:
    """File the dataset's declared stages for each verified partition that has a batch in
    force. A stage already done on the same inputs is left alone (a rerun of the same data
    rebuilds nothing); one done on other inputs (a corrected delivery, here or upstream) is
    queued again with every stage after it. What is built from this dataset is rebuilt
    likewise when its stages already ran on this partition's previous data."""
    lineage = read_lineage(session)
    for partition in partitions:
        for affected in [dataset_id, *sorted(lineage.descendants(dataset_id))]:
            declared = config.dataset(lineage.names[affected])
            if declared is None or not declared.stages:
                continue
            if affected != dataset_id and not _has_rows(session, affected, partition):
                continue  # downstream: its own verification files its stages
            _plan(session, affected, declared.stages, partition, lineage, now)


def _plan(session: Session, dataset_id: int, stages: list[StageConfig], partition: dt.date,
          lineage: Lineage, now: dt.datetime) -> None:
    inputs = _inputs(session, lineage, dataset_id, partition)
    if lineage.names[dataset_id] not in inputs:
        return  # no batch in force: nothing to build on
    rows = {r.stage: r for r in _chain(session, dataset_id, partition)}
    redo = False  # once a stage is redone, every stage after it is redone too
    for position, spec in enumerate(stages):
        row = rows.get(spec.name)
        if row is None:
            session.add(StageRun(dataset_id=dataset_id, partition=partition, stage=spec.name,
                                 position=position, command=spec.run, inputs=inputs,
                                 state=StageState.queued, queued_at=now))
            redo = True
            continue
        row.position, row.command = position, spec.run
        if row.state == StageState.running:
            continue  # its worker is on it
        if row.state in WAITING:
            row.inputs = inputs
        elif redo or row.inputs != inputs:
            why = ("a stage before it is redone" if redo and row.inputs == inputs
                   else "its inputs changed: " + _changed(row.inputs, inputs))
            _requeue(row, inputs, now, why)
            redo = True
    session.flush()
    _settle_gate(session, dataset_id, partition, now, lineage)


def _requeue(row: StageRun, inputs: dict[str, Any], now: dt.datetime, why: str) -> None:
    row.state, row.inputs, row.queued_at, row.note = StageState.queued, inputs, now, why
    row.held_by = row.exit_code = row.started_at = row.finished_at = None
    row.attempts, row.log_tail = 0, ""


def _changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    names = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
    return ", ".join(f"{n} {str(before.get(n))[:12]} -> {str(after.get(n))[:12]}" for n in names)


def _inputs(session: Session, lineage: Lineage, dataset_id: int,
            partition: dt.date) -> dict[str, str]:
    """The fingerprints of the batches in force on the partition: the dataset's and its
    upstreams' (transitively), by dataset name."""
    inputs = {}
    for member in sorted({dataset_id, *lineage.ancestors(dataset_id)}):
        batch = queries.get_current_batch(session, member, partition)
        if batch is not None:
            inputs[lineage.names[member]] = batch.fingerprint
    return inputs


def _chain(session: Session, dataset_id: int, partition: dt.date) -> list[StageRun]:
    return list(session.scalars(select(StageRun).where(
        StageRun.dataset_id == dataset_id, StageRun.partition == partition)
        .order_by(StageRun.position, StageRun.id)
        .execution_options(populate_existing=True)).all())


def _has_rows(session: Session, dataset_id: int, partition: dt.date) -> bool:
    return session.scalar(select(StageRun.id).where(
        StageRun.dataset_id == dataset_id, StageRun.partition == partition).limit(1)) is not None


# ---- the gate, as stages see it ---------------------------------------------------------

def held_by(session: Session, dataset_id: int, partition: dt.date, now: dt.datetime,
            lineage: Lineage | None = None) -> int | None:
    """The first alert (most upstream) holding the partition's gate that no override on
    this partition let past; None when the stages may run."""
    gate = evaluate_gate(session, dataset_id, partition, now=now, lineage=lineage)
    if gate.safe:
        return None
    let_past = overridden_alerts(session, dataset_id, partition)
    return next((a.id for a in gate.holding if a.id not in let_past), None)


def overridden_alerts(session: Session, dataset_id: int, partition: dt.date) -> set[int]:
    ids: set[int] = set()
    for alert_ids in session.scalars(select(StageAction.alert_ids).where(
            StageAction.dataset_id == dataset_id, StageAction.partition == partition,
            StageAction.action == "override")):
        ids.update(alert_ids)
    return ids


def _settle_gate(session: Session, dataset_id: int, partition: dt.date, now: dt.datetime,
                 lineage: Lineage | None = None) -> int | None:
    """Mark the partition's waiting stages held (by the first holding alert) or, when the
    gate lets them pass, queued again; the holding alert's id, or None."""
    holder = held_by(session, dataset_id, partition, now, lineage)
    for row in _chain(session, dataset_id, partition):
        if holder is not None and row.state in WAITING and row.held_by != holder:
            row.state, row.held_by, row.note = StageState.held, holder, f"held by #{holder}"
        elif holder is None and row.state == StageState.held:
            row.state, row.note = StageState.queued, f"released: #{row.held_by} no longer holds it"
            row.held_by = None
    session.flush()
    return holder


def settle(session: Session, dataset_id: int, partition: dt.date, *, now: dt.datetime) -> None:
    """Held or released at once, after something a person did moved the partition's gate
    (a mute added or ended): the page shows it now, and the worker's next look runs what
    was released, instead of waiting for its periodic look at held stages."""
    if _has_rows(session, dataset_id, partition):
        _settle_gate(session, dataset_id, partition, now)


# ---- running: the worker's stage loop ---------------------------------------------------

# The demo plays its history in one process, as it plays its runs (`monitors.demo`): a
# stage's command line, its environment, MONITORS_HOME and its log -> the exit code. Claims,
# gates, attempts, logs and states are the worker's own; only the subprocess is skipped.
Inline = Callable[[list[str], dict[str, str], Path, Any], int]


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    dataset: str
    partition: dt.date
    stage: str
    attempts: int
    lost_worker: str | None = None  # run again because this worker died mid-stage


def run_due_stages(sessions: sessionmaker[Session], settings: Settings, *, worker_id: str,
                   lease: dt.timedelta = dt.timedelta(seconds=60),
                   should_stop: Callable[[], bool] = lambda: False,
                   dataset_id: int | None = None, held: bool = True,
                   inline: Inline | None = None) -> list[int]:
    """Run every stage that may run now, one at a time, until none is left (or a stop is
    asked). With `held`, held stages are looked at too, and run when their gate is now
    safe (about 5 ms a held partition: a worker does it less often than it polls). The
    ids of the stage runs executed here. `inline` is for the demo only (see `Inline`)."""
    executed: list[int] = []
    while not should_stop():
        claimed = _claim_next(sessions, worker_id, lease, dataset_id, held)
        if claimed is None:
            break
        held = True  # a stage ran: what it waited for may have moved
        _execute(sessions, settings, claimed, worker_id=worker_id, lease=lease,
                 should_stop=should_stop, inline=inline)
        executed.append(claimed.id)
    return executed


def _due_partitions(session: Session, now: dt.datetime, dataset_id: int | None,
                    held: bool) -> list[tuple[int, dt.date]]:
    waiting = WAITING if held else (StageState.queued, StageState.overridden)
    query = select(StageRun.dataset_id, StageRun.partition).distinct().where(or_(
        StageRun.state.in_(waiting),
        and_(StageRun.state == StageState.running, StageRun.lease_expires_at < now)))
    if dataset_id is not None:
        query = query.where(StageRun.dataset_id == dataset_id)
    return sorted(session.execute(query).all(), key=lambda r: (r[1], r[0]))


def _claim_next(sessions: sessionmaker[Session], worker_id: str, lease: dt.timedelta,
                dataset_id: int | None, held: bool) -> Claimed | None:
    now = utcnow()
    with sessions() as session:
        due = _due_partitions(session, now, dataset_id, held)
    if not due:
        return None
    with sessions() as session:
        lineage = read_lineage(session)
    for ds, partition in due:
        with sessions.begin() as session:
            chain = _chain(session, ds, partition)
            head = next((r for r in chain if r.state not in DONE), None)
            if head is None or head.state == StageState.failed:
                continue
            lost_worker = None
            if head.state == StageState.running:
                if head.lease_expires_at >= now:
                    continue  # a live worker is on it
                # its worker died mid-stage: back to the queue, once (of two workers, one)
                lost_worker = head.claimed_by
                if session.execute(update(StageRun).where(
                        StageRun.id == head.id, StageRun.state == StageState.running,
                        StageRun.lease_expires_at == head.lease_expires_at)
                        .values(state=StageState.queued, claimed_by=None, lease_expires_at=None,
                                note=f"its worker {lost_worker} was lost mid-stage")
                        ).rowcount != 1:
                    continue
                log.warning("stage %s of %s on %s lost its worker %s: running it again",
                            head.stage, lineage.names[ds], partition, lost_worker)
                session.refresh(head)
            if _settle_gate(session, ds, partition, now, lineage) is not None:
                continue  # held now (a lost stage included: it waits for the gate too)
            session.refresh(head)
            attempts = head.attempts
            # one conditional statement: of two workers, one claims it
            claimed = session.execute(
                update(StageRun).where(StageRun.id == head.id, StageRun.state == head.state)
                .values(state=StageState.running, claimed_by=worker_id,
                        lease_expires_at=now + lease, attempts=StageRun.attempts + 1,
                        started_at=now, finished_at=None, held_by=None)).rowcount
            if claimed == 1:
                return Claimed(head.id, lineage.names[ds], partition, head.stage, attempts + 1,
                               lost_worker)
    return None


def _execute(sessions: sessionmaker[Session], settings: Settings, claimed: Claimed, *,
             worker_id: str, lease: dt.timedelta, should_stop: Callable[[], bool],
             inline: Inline | None = None) -> None:
    from monitors.config import ConfigError
    from monitors.pipeline.run_config import config_for_runs

    try:  # the file as it is now (parsed again when it changed since the stage was filed)
        config, _ = config_for_runs(settings)
    except ConfigError as exc:  # failed, not retried every poll: a person reruns it
        _finish(sessions, claimed.id, worker_id, StageState.failed, None, "",
                f"failed: the config cannot be used: {exc}")
        return
    declared = config.dataset(claimed.dataset)
    spec = next((s for s in (declared.stages if declared else []) if s.name == claimed.stage), None)
    if spec is None:
        _finish(sessions, claimed.id, worker_id, StageState.skipped, None, "",
                "skipped: the stage is no longer in the config")
        return
    attempts, retries = claimed.attempts, spec.retries
    folder = settings.home / "stages" / claimed.dataset / claimed.partition.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MONITORS_DATASET": claimed.dataset,
           "MONITORS_PARTITION": claimed.partition.isoformat()}
    argv = spec.argv(partition=claimed.partition, dataset=claimed.dataset)
    while True:
        log_path = folder / f"{spec.name}.{attempts}.log"
        if inline is not None:
            with open(log_path, "w", encoding="utf-8") as out:
                outcome, code = "ok", inline(argv, env, settings.home, out)
        else:
            outcome, code = _attempt(sessions, claimed.id, worker_id, lease, argv, env,
                                     settings.home, log_path, spec.timeout_seconds, should_stop)
        tail = _tail(log_path)
        if outcome == "lost":
            log.warning("stage run %s is no longer this worker's: stopped", claimed.id)
            return
        if outcome == "stopped":
            _finish(sessions, claimed.id, worker_id, StageState.queued, None, tail,
                    "handed back: its worker was stopping", log_path=log_path)
            return
        if outcome == "ok" and code == 0:
            _finish(sessions, claimed.id, worker_id, StageState.succeeded, 0, tail,
                    f"succeeded on attempt {attempts}" + (
                        f" (run again: its worker {claimed.lost_worker} was lost mid-stage)"
                        if claimed.lost_worker else ""), log_path=log_path)
            return
        what = (f"timed out after {spec.timeout} (killed)" if outcome == "timeout"
                else f"exit code {code}")
        if attempts - claimed.attempts >= retries:  # this claim's retries are used up
            _finish(sessions, claimed.id, worker_id, StageState.failed, code, tail,
                    f"failed: {what} on attempt {attempts}", log_path=log_path)
            return
        attempts += 1
        with sessions.begin() as session:
            session.execute(update(StageRun).where(StageRun.id == claimed.id,
                                                   StageRun.claimed_by == worker_id)
                            .values(attempts=attempts, exit_code=code, log_tail=tail,
                                    note=f"retrying: {what}"))


def _attempt(sessions, stage_run_id: int, worker_id: str, lease: dt.timedelta, argv: list[str],
             env: dict[str, str], cwd: Path, log_path: Path, timeout: float,
             should_stop: Callable[[], bool]) -> tuple[str, int | None]:
    """One attempt: ("ok", exit code), ("timeout", code), ("stopped", None) or ("lost",
    None). The lease is renewed every third of its length while the command runs."""
    beat = max(lease.total_seconds() / 3, 0.05)
    started = renewed = time.monotonic()
    with open(log_path, "wb") as out:
        try:
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True,
                                       preexec_fn=_die_with_parent)  # noqa: PLW1509 (libc only)
        except OSError as exc:  # no such program: a failed attempt, said in its log
            out.write(f"cannot start {argv[0]!r}: {exc}\n".encode())
            return "ok", 127
        while True:
            remaining = timeout - (time.monotonic() - started)
            try:  # short waits: a stop or the timeout is noticed within STOP_CHECK seconds
                return "ok", process.wait(timeout=max(min(beat, STOP_CHECK, remaining), 0.01))
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() - started >= timeout:
                _kill(process)
                return "timeout", process.returncode
            if should_stop():
                _kill(process)
                return "stopped", None
            if time.monotonic() - renewed >= beat:
                if not _renew(sessions, stage_run_id, worker_id, lease):
                    _kill(process)
                    return "lost", None
                renewed = time.monotonic()


def _renew(sessions, stage_run_id: int, worker_id: str, lease: dt.timedelta) -> bool:
    from sqlalchemy.exc import OperationalError

    try:
        with sessions.begin() as session:
            return session.execute(update(StageRun).where(
                StageRun.id == stage_run_id, StageRun.claimed_by == worker_id,
                StageRun.state == StageState.running)
                .values(lease_expires_at=utcnow() + lease)).rowcount == 1
    except OperationalError as exc:  # the database away for a moment: the next beat retries
        log.warning("stage run %s: lease not renewed (%s)", stage_run_id,
                    str(exc.orig or exc).splitlines()[0])
        return True


def _finish(sessions, stage_run_id: int, worker_id: str, state: StageState, code: int | None,
            tail: str, note: str, log_path: Path | None = None) -> None:
    with sessions.begin() as session:
        session.execute(update(StageRun).where(StageRun.id == stage_run_id,
                                               StageRun.claimed_by == worker_id,
                                               StageRun.state == StageState.running)
                        .values(state=state, exit_code=code, log_tail=tail, note=note,
                                log_path=str(log_path) if log_path else None,
                                claimed_by=None, lease_expires_at=None,
                                finished_at=None if state == StageState.queued else utcnow()))
    log.info("stage run %s: %s", stage_run_id, note)


def _prctl():
    """libc's prctl, loaded here in the parent: the child only calls it."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    return ctypes.CDLL(None, use_errno=True).prctl


_PRCTL = _prctl()


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the worker dies (Linux), so that a
    SIGKILLed worker leaves no stage running beside the one that replaces it. Only a call
    into libc runs between fork and exec (nothing that takes a lock another thread holds)."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # the stage and whatever it started
    process.wait()


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(max(path.stat().st_size - LOG_TAIL_BYTES, 0))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


# ---- what people do: list, override, rerun, skip ----------------------------------------

def list_stages(session: Session, dataset: str, partition: dt.date | None = None,
                *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    found = find_dataset(session, dataset)
    query = select(StageRun).where(StageRun.dataset_id == found.id)
    if partition is not None:
        query = query.where(StageRun.partition == partition)
    rows = session.scalars(query.order_by(StageRun.partition, StageRun.position)).all()
    return [stage_summary(r, found.name) for r in rows]


# what a person looks at first: failed, held, running, queued, overridden; then the rest
ATTENTION = (StageState.failed, StageState.held, StageState.running, StageState.queued,
             StageState.overridden)


@dataclass(frozen=True, slots=True)
class StagePage:
    stages: list[dict[str, Any]]
    total: int                 # how many match the filters in all
    counts: dict[str, int]     # of those, how many in each state


def stage_page(session: Session, *, datasets: Iterable[str] = (), states: Iterable[str] = (),
               limit: int | None = None, offset: int = 0) -> StagePage:
    """One page of stage runs across datasets (none given: every dataset; no state: any),
    the ones needing attention first (`ATTENTION`), then the newest partition, then each
    partition's stages in their order. Filtered and paged in SQL: the 120-day demo alone
    files about 240 of them."""
    ids = [find_dataset(session, name).id for name in datasets]  # an unknown one: NotFound
    states = tuple(states)
    unknown = sorted(set(states) - set(StageState))
    if unknown:
        raise Invalid(f"unknown stage state {', '.join(unknown)} (one of {', '.join(StageState)})")
    where = [Dataset.id == StageRun.dataset_id]
    if ids:
        where.append(StageRun.dataset_id.in_(ids))
    if states:
        where.append(StageRun.state.in_(states))
    rank = case({s.value: i for i, s in enumerate(ATTENTION)}, value=StageRun.state,
                else_=len(ATTENTION))
    rows = session.execute(
        select(StageRun, Dataset.name).where(*where)
        .order_by(rank, StageRun.partition.desc(), Dataset.name, StageRun.position, StageRun.id)
        .limit(limit).offset(offset)).all()
    counts = dict(session.execute(select(StageRun.state, func.count()).where(*where)
                                  .group_by(StageRun.state)).all())
    return StagePage([stage_summary(row, name) for row, name in rows], sum(counts.values()),
                     {str(k): int(v) for k, v in counts.items()})


def stage_summary(row: StageRun, dataset: str) -> dict[str, Any]:
    return {"dataset": dataset, "partition": row.partition.isoformat(), "stage": row.stage,
            "position": row.position, "state": row.state, "held_by": row.held_by,
            "attempts": row.attempts, "exit_code": row.exit_code, "note": row.note,
            "command": row.command, "inputs": dict(row.inputs or {}),
            "started_at": row.started_at.isoformat() if row.started_at else None,
            "finished_at": row.finished_at.isoformat() if row.finished_at else None,
            "log_path": row.log_path, "log_tail": row.log_tail}


def override(session: Session, dataset: str, partition: dt.date, *, by: str, reason: str,
             now: dt.datetime | None = None) -> dict[str, Any]:
    """Let the partition's held stages past its closed gate, for the alerts holding it now
    (a new alert holds them again). Refused without a reason, a name, or a held stage."""
    now = now or utcnow()
    if not (reason or "").strip():
        raise Refused("an override needs a reason (--reason): it is kept in the audit trail")
    if not (by or "").strip():
        raise Refused("an override needs a name (--by)")
    found = find_dataset(session, dataset)
    chain = _chain(session, found.id, partition)
    if not any(r.state in WAITING for r in chain):
        raise Refused(f"{found.name} {partition}: no stage is waiting to run, nothing to override")
    gate = evaluate_gate(session, found.id, partition, now=now)
    if gate.safe:
        raise Refused(f"{found.name} {partition}: the gate is not closed, nothing to override")
    ids = [a.id for a in gate.holding]
    session.add(StageAction(dataset_id=found.id, partition=partition, action="override",
                            by=by, reason=reason.strip(), at=now, alert_ids=ids))
    for row in chain:
        if row.state in WAITING:
            row.state, row.held_by = StageState.overridden, None
            row.note = f"overridden by {by}: {reason.strip()} (past {', '.join(f'#{i}' for i in ids)})"
    session.flush()
    return {"dataset": found.name, "partition": partition.isoformat(), "by": by,
            "reason": reason.strip(), "alert_ids": ids,
            "stages": [stage_summary(r, found.name) for r in chain]}


def rerun(session: Session, config, dataset: str, partition: dt.date, *, by: str,
          from_stage: str | None = None, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Queue the partition's stages again, from `from_stage` on (all by default); the gate
    still applies. Refused while one of them is running."""
    now = now or utcnow()
    found = find_dataset(session, dataset)
    declared = config.dataset(found.name)
    if declared is None or not declared.stages:
        raise NotFound(f"dataset {found.name!r} declares no stages")
    names = [s.name for s in declared.stages]
    if from_stage is not None and from_stage not in names:
        raise NotFound(f"dataset {found.name!r} has no stage {from_stage!r} "
                       f"(its stages: {', '.join(names)})")
    lineage = read_lineage(session)
    if not _has_rows(session, found.id, partition):
        _plan(session, found.id, declared.stages, partition, lineage, now)
        if not _has_rows(session, found.id, partition):
            raise NotFound(f"{found.name} {partition}: no batch in force to build on")
    chain = _chain(session, found.id, partition)
    start = names.index(from_stage) if from_stage else 0
    again = [r for r in chain if r.position >= start]
    if any(r.state == StageState.running for r in again):
        raise Refused(f"{found.name} {partition}: a stage is running; rerun it once it is done")
    inputs = _inputs(session, lineage, found.id, partition)
    for row in again:
        _requeue(row, inputs, now, f"rerun from {from_stage or names[0]} by {by}")
    session.add(StageAction(dataset_id=found.id, partition=partition, stage=from_stage or names[0],
                            action="run", by=by, at=now))
    session.flush()
    _settle_gate(session, found.id, partition, now, lineage)
    return [stage_summary(r, found.name) for r in _chain(session, found.id, partition)]


def skip(session: Session, dataset: str, partition: dt.date, stage: str, *, by: str,
         reason: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """Pass over a stage that is waiting or failed: the next one may run. Needs a reason."""
    now = now or utcnow()
    if not (reason or "").strip():
        raise Refused("skipping a stage needs a reason (--reason)")
    found = find_dataset(session, dataset)
    row = next((r for r in _chain(session, found.id, partition) if r.stage == stage), None)
    if row is None:
        raise NotFound(f"{found.name} {partition}: no stage {stage!r}")
    if row.state not in (*WAITING, StageState.failed):
        raise Refused(f"{found.name} {partition} {stage}: {row.state}, not waiting or failed")
    row.state, row.held_by = StageState.skipped, None
    row.note, row.finished_at = f"skipped by {by}: {reason.strip()}", now
    session.add(StageAction(dataset_id=found.id, partition=partition, stage=stage,
                            action="skip", by=by, reason=reason.strip(), at=now))
    session.flush()
    return stage_summary(row, found.name)

