"""The worker: executes queued runs, and (in one process only) owns the cron schedules.

Following PLATFORM.md: schedules live in the datasets table and are mirrored into an
in-memory APScheduler by a periodic reconcile job, in the one process that holds the leader
lock; every worker polls the queue and executes what it claims, one run per dataset at a
time (the claim rule in monitors.pipeline.queue), renewing each run's lease while it works. A worker
that dies leaves runs whose lease runs out: any worker fails and re-queues them.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import importlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from monitors.pipeline import queue
from monitors.pipeline.schedule import cron_trigger, last_fire_time
from monitors.settings import Settings
from store.models import Dataset, Run, RunStatus

log = logging.getLogger("monitors.pipeline.worker")
# the longest a poller waits between attempts on a failing database: once it is back, work
# resumes within this many seconds
MAX_BACKOFF = 10.0

Executor = Callable[..., None]
T = TypeVar("T")


def load_executor(spec: Executor | str | None) -> Executor:
    """The function that does a claimed run's work: monitors.pipeline.run.execute_run unless another
    one is given, as a callable or as "package.module:function" (how tests hand a slow fake
    to a worker subprocess)."""
    if callable(spec):
        return spec
    if spec is None:
        from monitors.pipeline.run import (
            execute_run,  # the pipeline is heavy: only a worker needs it
        )
        return execute_run
    module, _, name = spec.partition(":")
    if not name:
        raise ValueError(f"executor {spec!r} is not of the form package.module:function")
    return getattr(importlib.import_module(module), name)


class LeaderLock:
    """Held by at most one process per store: the one that owns the schedules.

    SQLite: an flock on a file next to the store's data (flock locks belong to an open file,
    so two holders in one process exclude each other too, as two dashboard reloads would).
    PostgreSQL: a session advisory lock on a connection of its own, outside the pool, since a
    pooled connection handed back keeps the lock held."""

    def __init__(self, settings: Settings, name: str = "scheduler"):
        self.settings = settings
        self.name = name
        self._file = None
        self._engine: Engine | None = None
        self._connection = None

    @property
    def held(self) -> bool:
        return self._file is not None or self._connection is not None

    def acquire(self) -> bool:
        if self.held:
            return True
        if self.settings.db_url.startswith("postgresql"):
            return self._acquire_advisory()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        handle = open(self.settings.home / f"{self.name}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{socket.gethostname()} pid {os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def _key(self) -> int:
        digest = hashlib.sha256(f"monitors.{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def _acquire_advisory(self) -> bool:
        self._engine = self._engine or create_engine(self.settings.db_url, poolclass=NullPool)
        connection = self._engine.connect()
        got = connection.execute(select(func.pg_try_advisory_lock(self._key()))).scalar()
        connection.commit()
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def still_held(self) -> bool:
        """An advisory lock dies with its connection (a database restart, a network cut),
        and then another worker may take it: the leader checks before each reconcile."""
        if self._connection is None:
            return self._file is not None
        try:
            self._connection.execute(select(1))
            self._connection.commit()
            return True
        except OperationalError:
            return False

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            with contextlib.suppress(OperationalError):
                self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
            self._connection.close()  # closing the session releases the lock anyway
            self._connection = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


@dataclass
class _InFlight:
    run_id: int
    dataset_id: int
    lost: threading.Event = field(default_factory=threading.Event)


class Worker:
    """Claims and executes queued runs; the leader also mirrors cron schedules into ticks.

    `run_forever()` is `python -m monitors worker`, `drain()` is its `--once`, and
    `start_background()` hosts it in the dashboard's process, once per store."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, *,
                 executor: Executor | str | None = None, worker_id: str | None = None,
                 lease: dt.timedelta = dt.timedelta(seconds=60), poll_interval: float = 2.0,
                 reconcile_interval: float = 30.0, max_parallel: int = 2,
                 schedules: bool = True, retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0),
                 catch_up_days: int = 90, held_stages_every: float = 10.0):
        self.sessions = sessions
        self.settings = settings
        self.engine: Engine = sessions.kw["bind"]
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease = lease
        self.poll_interval = poll_interval
        self.reconcile_interval = reconcile_interval
        self.max_parallel = max_parallel
        self.schedules = schedules
        self.retry_delays = retry_delays
        self.catch_up_days = catch_up_days
        # how often held stages are looked at again (each costs a gate evaluation)
        self.held_stages_every = held_stages_every
        self._executor_spec = executor
        self._executor: Executor | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._inflight: dict[int, _InFlight] = {}
        self._inflight_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._threads: list[threading.Thread] = []
        self._heartbeat_stop = threading.Event()
        self._leader = LeaderLock(settings)
        self._scheduler: BackgroundScheduler | None = None
        self._mirrored: dict[str, str] = {}  # job id -> the cron it was added with
        self._rejected: dict[str, str] = {}  # job id -> a cron that does not parse (logged once)
        self._config_version: str | None = None  # the config file's version last synced
        self._declared: set[str] = set()         # the datasets that version declares
        self._undeclared: set[str] = set()       # declared once, removed from the file since
        # held by each scheduler job and by stop(): APScheduler 3's shutdown(wait=True) joins
        # job threads while holding the job-store lock that add_job needs, so a reconcile in
        # progress would deadlock it; behind this lock, a job that starts late does nothing
        self._jobs_lock = threading.Lock()
        self._started = False

    # ---- public surface ------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        """Recover runs lost by dead workers, then poll and (if leader) schedule, in threads."""
        if self._started:
            return
        self._started = True
        self._start_executing()
        if self.schedules:
            try:
                self._try_to_lead()
            except OperationalError as exc:  # the poller tries again
                log.warning("leader lock not taken (%s)", str(exc.orig or exc).splitlines()[0])
        poller = threading.Thread(target=self._poll_loop, name=f"poller-{self.worker_id}", daemon=True)
        poller.start()
        self._threads.append(poller)
        stager = threading.Thread(target=self._stage_loop, name=f"stages-{self.worker_id}", daemon=True)
        stager.start()
        self._threads.append(stager)
        log.info("worker %s started (leader: %s)", self.worker_id, self.is_leader)

    def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, let the runs in flight finish or hand them back, drop the lock.

        Executors see `should_stop()` turn true; a run still `running` when its executor
        returns is released to the queue for the next worker."""
        self._stop.set()
        self._wake.set()
        with self._jobs_lock:
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._heartbeat_stop.set()
        self._leader.release()
        log.info("worker %s stopped", self.worker_id)

    def request_stop(self) -> None:
        """Ask for a stop from a signal handler (no blocking there)."""
        self._stop.set()
        self._wake.set()

    def run_forever(self) -> int:
        """`python -m monitors worker`: until SIGTERM or SIGINT, then a clean stop."""
        with self.stop_on_signals():
            self.start()
            while not self._stop.wait(1.0):
                pass
            self.stop()
        return 0

    def drain(self, *, dataset_id: int | None = None, until_run: int | None = None) -> list[int]:
        """Execute queued runs until none is left (of `dataset_id`, if given), then return the
        ids executed here. With `until_run`, return once that run is finished, wherever it
        ran: the runs of its dataset queued before it go first, in this process or another."""
        self._start_executing()
        executed: list[int] = []
        next_recovery = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_recovery:
                    self._db(self.recover, "recovering stale runs")
                    next_recovery = time.monotonic() + self.lease.total_seconds()
                busy = self._busy()  # read before the store: a run may end in between
                if until_run is not None:
                    until_run = self._db(lambda: self._latest_attempt(until_run), "polling")
                finished, may_claim = self._db(lambda: self._progress(dataset_id, until_run), "polling")
                if finished and not busy:
                    break
                while (may_claim and self._free_slots() > 0
                       and (run := self._db(lambda: self._claim(dataset_id), "claiming")) is not None):
                    executed.append(run.id)
                    self._submit(run)
                    may_claim = run.id != until_run
                self._wake.wait(self.poll_interval)
                self._wake.clear()
        finally:
            self._stop_executing()
        # the stages the runs filed (and any others due) run here too, then the drain is over
        self._db(lambda: self.run_stages(dataset_id), "running stages")
        return executed

    def start_background(self) -> Worker | None:
        """Host the worker in this process (the dashboard's one-command demo) if no other
        process does: None when another holds the leader lock. Stop it with `stop()`."""
        if not self._leader.acquire():
            log.info("another process hosts the worker; not starting one here")
            return None
        self.schedules = True
        self.start()
        return self

    @contextlib.contextmanager
    def stop_on_signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT ask for a clean stop (main thread only, where Python allows it)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, _frame) -> None:
            log.info("signal %s: stopping after the runs in flight", signal.Signals(signum).name)
            self.request_stop()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def scheduled_jobs(self) -> dict[str, str]:
        """The cron jobs mirrored in this worker: job id -> its cron expression."""
        return dict(self._mirrored) if self.is_leader else {}

    # ---- store operations, each its own unit of work ---------------------------------

    def recover(self) -> None:
        with self.sessions.begin() as session:
            for lost, copy in queue.recover_stale(session):
                log.warning("run %s (dataset %s) lost its worker %s: %s%s", lost.id, lost.dataset_id,
                            lost.claimed_by, lost.error, f"; re-queued as run {copy.id}" if copy else "")

    def notice_late_deliveries(self) -> list[int]:
        """Queue a run for each partition marked missing whose file has landed since
        (monitors.intake.late_files): claimed in the same poll, it lands the file and resolves the
        missing alert."""
        from monitors.intake.late_files import (
            request_late_deliveries,  # the readers: only here
        )

        with self.sessions.begin() as session:
            return [run.id for run in request_late_deliveries(session, self.settings)]

    def _job(self, work: Callable[..., object], *args) -> None:
        with self._jobs_lock:
            if not self._stop.is_set():
                work(*args)

    def reconcile(self) -> None:
        """Mirror the datasets' cron schedules into the scheduler; paused datasets get none."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        if not self._leader.still_held():
            log.error("worker %s lost the leader lock (its database connection dropped): "
                      "no longer scheduling", self.worker_id)
            self._scheduler, self._mirrored = None, {}
            self._leader.release()
            scheduler.shutdown(wait=False)
            return

        self._sync_config()

        def read() -> dict[str, tuple[int, str, str]]:
            with self.sessions() as session:
                rows = session.execute(select(Dataset.id, Dataset.name, Dataset.schedule)
                                       .where(Dataset.paused.is_(False))).all()
            return {f"schedule:{i}": (i, name, cron.strip()) for i, name, cron in rows
                    if cron and cron.strip() and name not in self._undeclared}

        wanted = self._db(read, "reading schedules")
        for job_id in set(self._mirrored) - set(wanted):
            with contextlib.suppress(JobLookupError):
                scheduler.remove_job(job_id)
            del self._mirrored[job_id]
            log.info("schedule %s removed", job_id)
        for job_id, (dataset_id, name, cron) in wanted.items():
            if self._mirrored.get(job_id) == cron or self._rejected.get(job_id) == cron:
                continue  # re-adding would recompute its next fire time for nothing
            try:
                trigger = cron_trigger(cron)
            except ValueError as exc:
                log.error("dataset %s: schedule %r is not a cron expression (%s); not scheduled",
                          name, cron, exc)
                self._rejected[job_id] = cron
                if job_id in self._mirrored:  # keep no stale schedule for it either
                    with contextlib.suppress(JobLookupError):
                        scheduler.remove_job(job_id)
                    del self._mirrored[job_id]
                continue
            scheduler.add_job(self._job, trigger, id=job_id, name=f"tick {name}",
                              args=[self.tick, dataset_id], replace_existing=True)
            self._mirrored[job_id] = cron
            self._rejected.pop(job_id, None)
            log.info("dataset %s scheduled at %r", name, cron)
            # an in-memory scheduler never replays a tick it was down for: play the latest
            # one now (the watermark makes it a no-op when nothing was missed)
            missed = last_fire_time(trigger, dt.datetime.now(dt.UTC))
            if missed is not None:
                self.tick(dataset_id, today=missed.date())

    def _sync_config(self) -> None:
        """Follow the config file while running: a dataset added to it is stored and scheduled
        at the next reconcile, one removed from it is no longer scheduled (its history
        stays). The file is parsed again only when it changed; a broken file is logged and
        the schedules stay as they were."""
        from monitors.catalog import (
            sync_datasets,  # the pipeline's modules, loaded to lead
        )
        from monitors.config_versions import record_version
        from monitors.pipeline.run_config import config_for_runs

        try:
            config, version = config_for_runs(self.settings)
        except ValueError as exc:
            log.error("the config cannot be used (%s); schedules unchanged", exc)
            return
        if version == self._config_version:
            return
        declared = {d.name for d in config.datasets}

        def sync() -> None:
            with self.sessions.begin() as session:
                sync_datasets(session, config, self.settings.home)
                record_version(session, config, self.settings)  # a hand edit, kept

        self._db(sync, "storing the config's datasets")
        removed = self._declared - declared
        if removed:
            log.info("datasets %s left the config: no longer scheduled", sorted(removed))
        self._undeclared = (self._undeclared | removed) - declared
        self._declared, self._config_version = declared, version

    def tick(self, dataset_id: int, today: dt.date | None = None) -> list[int]:
        """A cron tick: request every partition since the dataset's watermark up to yesterday."""
        def request() -> list[int]:
            with self.sessions.begin() as session:
                dataset = session.get(Dataset, dataset_id)
                if dataset is None or dataset.paused:
                    return []
                return [run.id for run in queue.request_catch_up(
                    session, dataset, today=today, limit_days=self.catch_up_days)]

        ids = self._db(request, f"requesting scheduled runs of dataset {dataset_id}")
        if ids:
            log.info("dataset %s: scheduled runs %s requested", dataset_id, ids)
            self._wake.set()
        return ids

    # ---- internals -------------------------------------------------------------------

    def _db(self, work: Callable[[], T], what: str) -> T:
        """`work()`, retried with backoff while the database is unavailable or locked
        (OperationalError: transient); other errors are not retried."""
        for delay in self.retry_delays:
            try:
                return work()
            except OperationalError as exc:
                log.warning("%s: database error (%s); retrying in %.1f s", what,
                            str(exc.orig or exc).splitlines()[0], delay)
                time.sleep(delay)
        return work()

    def _claim(self, dataset_id: int | None = None) -> Run | None:
        return queue.claim_next(self.engine, self.worker_id, self.lease, dataset_id=dataset_id)

    def _latest_attempt(self, run_id: int) -> int:
        with self.sessions() as session:
            return queue.latest_attempt(session, run_id).id

    def _progress(self, dataset_id: int | None, until_run: int | None) -> tuple[bool, bool]:
        """(nothing left to wait for, worth claiming): once `until_run` has left the queue,
        nothing queued after it is this drain's business."""
        with self.sessions() as session:
            if until_run is not None:
                status = session.scalar(select(Run.status).where(Run.id == until_run))
                return status not in (RunStatus.queued, RunStatus.running), status == RunStatus.queued
            query = select(func.count(Run.id)).where(Run.status == RunStatus.queued)
            if dataset_id is not None:
                query = query.where(Run.dataset_id == dataset_id)
            return not session.scalar(query), True

    def _free_slots(self) -> int:
        with self._inflight_lock:
            return self.max_parallel - len(self._inflight)

    def _busy(self) -> bool:
        with self._inflight_lock:
            return bool(self._inflight)

    def _start_executing(self) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix=f"run-{self.worker_id}")
            # an event per heartbeat: a later drain must not revive the previous one
            self._heartbeat_stop = threading.Event()
            threading.Thread(target=self._heartbeat_loop, args=(self._heartbeat_stop,),
                             name=f"heartbeat-{self.worker_id}", daemon=True).start()

    def _stop_executing(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._heartbeat_stop.set()

    def _submit(self, run: Run) -> None:
        state = _InFlight(run.id, run.dataset_id)
        with self._inflight_lock:
            self._inflight[run.id] = state
        log.info("run %s (dataset %s, %s..%s) claimed", run.id, run.dataset_id,
                 run.partition_from, run.partition_to)
        self._pool.submit(self._execute, state)

    def _execute(self, state: _InFlight) -> None:
        error = None
        try:
            if self._executor is None:
                self._executor = load_executor(self._executor_spec)
            self._executor(self.sessions, self.settings, state.run_id,
                           should_stop=lambda: self._stop.is_set() or state.lost.is_set())
        except Exception as exc:  # the run records it; the worker goes on with the next one
            log.exception("run %s failed", state.run_id)
            error = f"{type(exc).__name__}: {exc}"
        try:
            self._db(lambda: self._settle(state, error), f"finishing run {state.run_id}")
        except Exception:
            # the lease will run out and another worker will fail and re-queue the run
            log.exception("run %s: could not record its end", state.run_id)
        finally:
            with self._inflight_lock:
                self._inflight.pop(state.run_id, None)
            self._wake.set()

    def _settle(self, state: _InFlight, error: str | None) -> None:
        """Make sure a run does not stay `running` once its executor has returned."""
        if state.lost.is_set():
            return  # declared lost and re-queued elsewhere: not ours to touch
        with self.sessions.begin() as session:
            if self._stop.is_set() and error is None and queue.release(session, state.run_id, self.worker_id):
                log.info("run %s handed back to the queue (worker stopping)", state.run_id)
                return
            if queue.finish(session, state.run_id, RunStatus.failed,
                            error or "the executor returned without setting a final status"):
                log.warning("run %s failed: %s", state.run_id, error or "no final status")
                return
        log.info("run %s done", state.run_id)

    def _heartbeat_loop(self, stopped: threading.Event) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while not stopped.wait(interval):
            with self._inflight_lock:
                states = list(self._inflight.values())
            for state in states:
                try:
                    with self.sessions.begin() as session:
                        ours = queue.renew_lease(session, state.run_id, self.worker_id, self.lease)
                except OperationalError as exc:
                    log.warning("run %s: lease not renewed (%s); next beat retries", state.run_id,
                                str(exc.orig or exc).splitlines()[0])
                    continue
                except Exception:  # a dead heartbeat would let a live run be declared lost
                    log.exception("run %s: lease not renewed; next beat retries", state.run_id)
                    continue
                if not ours and not state.lost.is_set():
                    with self._inflight_lock:
                        still_running = state.run_id in self._inflight
                    if still_running:
                        log.warning("run %s is no longer this worker's (lease lost): stopping it",
                                    state.run_id)
                        state.lost.set()

    def _try_to_lead(self) -> None:
        with self._jobs_lock:  # so that stop() never misses a scheduler started meanwhile
            if self._stop.is_set() or self._scheduler is not None or not self._leader.acquire():
                return
            scheduler = BackgroundScheduler(
                timezone=dt.UTC,
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 600})
            scheduler.add_job(self._job, "interval", seconds=self.reconcile_interval,
                              args=[self.reconcile], id="reconcile",
                              next_run_time=dt.datetime.now(dt.UTC))
            self._scheduler = scheduler
            scheduler.start()
        log.info("worker %s owns the schedules", self.worker_id)

    def run_stages(self, dataset_id: int | None = None, *, held: bool = True) -> list[int]:
        """Run the stages that may run now (monitors.pipeline.stages), one at a time, until none
        is left: queued ones, ones whose worker died mid-stage and (with `held`) held ones
        whose gate is now safe. The stage runs executed here."""
        from monitors.pipeline.stages import run_due_stages

        return run_due_stages(self.sessions, self.settings, worker_id=self.worker_id,
                              lease=self.lease, should_stop=self._stop.is_set,
                              dataset_id=dataset_id, held=held)

    def _stage_loop(self) -> None:
        """Stages run beside the runs, in a thread of their own: a stage may take its
        timeout's length, and the queue must not wait for it."""
        failures = 0
        next_held = 0.0
        while not self._stop.is_set():
            wait = self.poll_interval
            try:
                held = time.monotonic() >= next_held
                if held:
                    next_held = time.monotonic() + self.held_stages_every
                self.run_stages(held=held)
                failures = 0
            except Exception:  # a stage loop that died quietly would leave stages held forever
                failures += 1
                wait = min(self.poll_interval * 2 ** failures, MAX_BACKOFF)
                log.exception("stages: unexpected error; retrying in %.1f s", wait)
            self._stop.wait(wait)

    def _poll_loop(self) -> None:
        next_recovery = 0.0  # first thing: runs a dead worker left behind
        next_leadership = time.monotonic() + self.reconcile_interval
        failures = 0
        while not self._stop.is_set():
            wait = self.poll_interval
            try:
                now = time.monotonic()
                if now >= next_recovery:
                    self.recover()
                    next_recovery = now + self.lease.total_seconds()
                if self.schedules and not self.is_leader and now >= next_leadership:
                    self._try_to_lead()  # the previous leader may have died
                    next_leadership = now + self.reconcile_interval
                self.notice_late_deliveries()
                while not self._stop.is_set() and self._free_slots() > 0 and (run := self._claim()):
                    self._submit(run)
                failures = 0
            except OperationalError as exc:
                failures += 1
                wait = min(self.poll_interval * 2 ** failures, MAX_BACKOFF)
                log.warning("poller: database error (%s); retrying in %.1f s",
                            str(exc.orig or exc).splitlines()[0], wait)
            except Exception:  # a poller that died quietly would leave the queue unserved
                failures += 1
                wait = min(self.poll_interval * 2 ** failures, MAX_BACKOFF)
                log.exception("poller: unexpected error; retrying in %.1f s", wait)
            self._wake.wait(wait)
            self._wake.clear()
