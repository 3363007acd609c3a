"""The worker: one run per dataset at a time, leases, recovery after a kill, clean stops,
retries on database errors, schedules owned by one leader and caught up after downtime."""
from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from monitors.cli import runs as cli_runs
from monitors.pipeline import queue
from monitors.pipeline.worker import LeaderLock, Worker, cron_trigger, last_fire_time
from store.models import Dataset, Run, utcnow

ROOT = Path(__file__).resolve().parents[2]
TODAY = utcnow().date()
FAST = {"lease": dt.timedelta(seconds=2), "poll_interval": 0.05, "reconcile_interval": 0.2,
        "retry_delays": (0.01, 0.02, 0.05)}


def day(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def succeed(sessions, run_id: int) -> None:
    with sessions.begin() as session:
        queue.finish(session, run_id, "succeeded")


def slow_executor(sessions, settings, run_id, *, should_stop) -> None:
    """For worker subprocesses: works TEST_EXECUTOR_SECONDS, stopping early when asked (the
    run then stays `running` for the worker to hand back), and succeeds."""
    with sessions.begin() as session:
        run = session.get(Run, run_id)
        run.log += f"started in pid {os.getpid()}\n"
    deadline = time.monotonic() + float(os.environ.get("TEST_EXECUTOR_SECONDS", "0"))
    while time.monotonic() < deadline:
        if should_stop():
            return
        time.sleep(0.05)
    succeed(sessions, run_id)


class Recorder:
    """An in-process executor that remembers when each run worked."""

    def __init__(self, sessions, seconds: float = 0.0, outcome: str | None = "succeeded"):
        self.sessions, self.seconds, self.outcome = sessions, seconds, outcome
        self.intervals: dict[int, tuple[float, float, int]] = {}
        self.lock = threading.Lock()

    def __call__(self, sessions, settings, run_id, *, should_stop) -> None:
        started = time.monotonic()
        deadline = started + self.seconds
        while time.monotonic() < deadline and not should_stop():
            time.sleep(0.01)
        with self.lock:
            self.intervals[run_id] = (started, time.monotonic(), threading.get_ident())
        if self.outcome == "raise":
            raise RuntimeError("disk on fire")
        if self.outcome is not None:
            with sessions.begin() as session:
                queue.finish(session, run_id, self.outcome)


def make_dataset(sessions, name: str, schedule: str = "0 6 * * *", paused: bool = False) -> int:
    with sessions.begin() as session:
        dataset = Dataset(name=name, format="csv", schedule=schedule, paused=paused)
        session.add(dataset)
        session.flush()
        return dataset.id


def request(sessions, dataset_id: int, first: dt.date, last: dt.date | None = None) -> int:
    with sessions.begin() as session:
        return queue.request_run(session, session.get(Dataset, dataset_id), first, last or first,
                                 trigger="manual", by="ana").id


def runs(sessions) -> dict[int, Run]:
    with sessions() as session:
        return {run.id: run for run in session.query(Run).all()}


def wait_for(condition, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# ---- in-process workers -------------------------------------------------------------------

def test_two_requests_for_one_dataset_run_one_at_a_time(sessions, settings):
    orders = make_dataset(sessions, "orders")
    first, second = request(sessions, orders, day(2)), request(sessions, orders, day(1))
    executor = Recorder(sessions, seconds=0.3)
    workers = [Worker(sessions, settings, executor=executor, schedules=False, **FAST) for _ in range(2)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    (start1, end1, _), (start2, end2, _) = executor.intervals[first], executor.intervals[second]
    assert end1 <= start2, "the second run of a dataset started before the first had finished"
    assert {r.status for r in runs(sessions).values()} == {"succeeded"}


def test_runs_of_different_datasets_do_run_in_parallel(sessions, settings):
    ids = [request(sessions, make_dataset(sessions, name), day(1)) for name in ("a", "b")]
    executor = Recorder(sessions, seconds=0.5)
    Worker(sessions, settings, executor=executor, schedules=False, max_parallel=2, **FAST).drain()
    (s1, e1, _), (s2, e2, _) = (executor.intervals[i] for i in ids)
    assert s2 < e1 and s1 < e2


def test_drain_records_failures_and_returns_when_the_queue_is_empty(sessions, settings):
    orders = make_dataset(sessions, "orders")
    raised, silent = request(sessions, orders, day(2)), request(sessions, orders, day(1))
    failing = Recorder(sessions, outcome="raise")
    assert Worker(sessions, settings, executor=failing, schedules=False, **FAST).drain(
        until_run=raised) == [raised]
    quiet = Recorder(sessions, outcome=None)  # returns without a final status
    assert Worker(sessions, settings, executor=quiet, schedules=False, **FAST).drain() == [silent]
    stored = runs(sessions)
    assert (stored[raised].status, stored[raised].error) == ("failed", "RuntimeError: disk on fire")
    assert stored[silent].status == "failed"
    assert "without setting a final status" in stored[silent].error
    assert Worker(sessions, settings, executor=quiet, schedules=False, **FAST).drain() == []


def test_the_poller_retries_transient_database_errors(sessions, settings, monkeypatch):
    run_id = request(sessions, make_dataset(sessions, "orders"), day(1))
    real_claim, failures = queue.claim_next, []

    def flaky_claim(*args, **kwargs):
        if len(failures) < 3:
            failures.append(1)
            raise OperationalError("UPDATE runs ...", {}, Exception("database is locked"))
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(queue, "claim_next", flaky_claim)
    worker = Worker(sessions, settings, executor=Recorder(sessions), schedules=False, **FAST)
    worker.start()
    try:
        wait_for(lambda: runs(sessions)[run_id].status == "succeeded", 10, "the run to succeed")
    finally:
        worker.stop()
    assert len(failures) == 3


def test_a_run_whose_lease_was_taken_over_is_told_to_stop(sessions, settings):
    run_id = request(sessions, make_dataset(sessions, "orders"), day(1))
    told = threading.Event()

    def stubborn(sessions, settings, run_id, *, should_stop) -> None:
        with sessions.begin() as session:  # as if another worker had declared it lost
            session.get(Run, run_id).claimed_by = "someone else"
        wait_for(should_stop, 5, "should_stop")
        told.set()

    worker = Worker(sessions, settings, executor=stubborn, schedules=False,
                    **{**FAST, "lease": dt.timedelta(seconds=0.3)})
    worker.drain(until_run=run_id)
    assert told.is_set()
    assert runs(sessions)[run_id].claimed_by == "someone else"  # not ours to finish


def test_stopping_hands_an_unfinished_run_back_to_the_queue(sessions, settings):
    run_id = request(sessions, make_dataset(sessions, "orders"), day(1))
    executor = Recorder(sessions, seconds=30, outcome=None)
    worker = Worker(sessions, settings, executor=executor, schedules=False, **FAST)
    worker.start()
    wait_for(lambda: runs(sessions)[run_id].status == "running", 10, "the run to start")
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 5
    run = runs(sessions)[run_id]
    assert (run.status, run.claimed_by, run.lease_expires_at) == ("queued", None, None)
    assert "released" in run.log


# ---- schedules --------------------------------------------------------------------------

def test_only_one_of_two_workers_owns_the_schedules(sessions, settings):
    make_dataset(sessions, "orders")
    first = Worker(sessions, settings, executor=Recorder(sessions), **FAST)
    second = Worker(sessions, settings, executor=Recorder(sessions), **FAST)
    first.start()
    second.start()
    try:
        assert first.is_leader and not second.is_leader
        wait_for(lambda: first.scheduled_jobs(), 5, "the leader to mirror the schedules")
        assert second.scheduled_jobs() == {}
        # the dashboard's in-process host stands down while a worker owns the store
        assert Worker(sessions, settings, **FAST).start_background() is None
        first.stop()
        wait_for(lambda: second.is_leader, 5, "the second worker to take over")
        wait_for(lambda: second.scheduled_jobs(), 5, "the new leader to mirror the schedules")
    finally:
        first.stop()
        second.stop()
    hosted = Worker(sessions, settings, executor=Recorder(sessions), **FAST).start_background()
    assert hosted is not None and hosted.is_leader
    hosted.stop()


def test_the_leader_lock_excludes_within_one_process_too(settings):
    one, two = LeaderLock(settings), LeaderLock(settings)
    assert one.acquire() and not two.acquire()
    one.release()
    assert two.acquire()
    two.release()


def test_schedules_mirror_the_datasets_table(sessions, settings):
    orders = make_dataset(sessions, "orders", schedule="0 6 * * *")
    users = make_dataset(sessions, "users", schedule="30 7 * * *", paused=True)
    broken = make_dataset(sessions, "broken", schedule="every morning")
    worker = Worker(sessions, settings, executor=Recorder(sessions), **{**FAST, "reconcile_interval": 60})
    worker.start()
    try:
        wait_for(lambda: worker.scheduled_jobs(), 5, "the first reconcile")
        assert worker.scheduled_jobs() == {f"schedule:{orders}": "0 6 * * *"}
        job = worker._scheduler.get_job(f"schedule:{orders}")
        assert (job.next_run_time.hour, job.next_run_time.minute) == (6, 0)
        assert f"schedule:{broken}" not in worker.scheduled_jobs()

        with sessions.begin() as session:
            session.get(Dataset, orders).paused = True
            session.get(Dataset, users).paused = False
            session.get(Dataset, users).schedule = "15 8 * * *"
        worker.reconcile()
        assert worker.scheduled_jobs() == {f"schedule:{users}": "15 8 * * *"}
        assert worker._scheduler.get_job(f"schedule:{orders}") is None
        assert worker._scheduler.get_job(f"schedule:{users}").next_run_time.hour == 8
    finally:
        worker.stop()


def test_a_tick_after_downtime_requests_every_missing_partition(sessions, settings):
    orders = make_dataset(sessions, "orders")
    last = request(sessions, orders, day(6))
    executor = Recorder(sessions)
    worker = Worker(sessions, settings, executor=executor, schedules=False, **FAST)
    worker.drain()
    assert runs(sessions)[last].status == "succeeded"

    # the worker was down five days: one tick requests them all, and the worker runs them
    requested = worker.tick(orders)
    partitions = {r.partition_from for r in runs(sessions).values() if r.id in requested}
    assert partitions == {day(n) for n in range(5, 0, -1)}
    assert worker.tick(orders) == []
    worker.drain()
    with sessions() as session:
        assert queue.watermark(session, orders) == day(1)
    assert worker.tick(orders) == []  # caught up: nothing until tomorrow
    assert worker.tick(orders, today=TODAY + dt.timedelta(days=1)) != []


def test_a_new_leader_replays_the_tick_it_was_down_for(sessions, settings):
    orders = make_dataset(sessions, "orders", schedule="0 0 * * *")  # fired at midnight UTC today
    done = request(sessions, orders, day(4))
    worker = Worker(sessions, settings, executor=Recorder(sessions), schedules=False, **FAST)
    worker.drain()
    assert runs(sessions)[done].status == "succeeded"

    leader = Worker(sessions, settings, executor=Recorder(sessions), **FAST)
    leader.start()  # its next tick is tomorrow: the missed one must not wait for it
    try:
        wait_for(lambda: {r.partition_from for r in runs(sessions).values()
                          if r.trigger == "schedule" and r.status == "succeeded"} == {day(3), day(2), day(1)},
                 15, "the missed partitions to be requested and run")
    finally:
        leader.stop()


@pytest.mark.parametrize(("cron", "weekday"), [("0 9 * * 1", 0), ("0 9 * * 0", 6), ("0 9 * * 7", 6),
                                              ("0 9 * * fri", 4), ("0 9 * * 2-3", 1)])
def test_cron_days_of_week_mean_what_crontab_means(cron, weekday):
    # APScheduler 3 numbers days from Monday = 0; a crontab line means Sunday = 0
    tuesday_noon = dt.datetime(2026, 11, 24, 12, tzinfo=dt.UTC)
    fired = last_fire_time(cron_trigger(cron), tuesday_noon)
    assert (fired.weekday(), fired.hour) == (weekday, 9)
    with pytest.raises(ValueError):
        cron_trigger(cron.replace(cron.split()[4], "8"))


# ---- the CLI ----------------------------------------------------------------------------

def cli_args(**values) -> argparse.Namespace:
    defaults = {"date": None, "date_from": None, "date_to": None, "now": False, "by": "ana",
                "json": True, "executor": None}
    return argparse.Namespace(**{**defaults, **values})


def test_run_now_executes_here_and_exits_1_when_the_run_failed(sessions, settings, capsys):
    make_dataset(sessions, "orders")
    here = f"{__name__}:slow_executor"
    assert cli_runs.COMMANDS[("run", None)](
        cli_args(dataset="orders", date=day(1), now=True, executor=here), settings, sessions) == 0
    assert '"status": "succeeded"' in capsys.readouterr().out
    assert cli_runs.COMMANDS[("run", None)](
        cli_args(dataset="orders", date=day(2), now=True, executor=f"{__name__}:raising_executor"),
        settings, sessions) == 1
    assert cli_runs.COMMANDS[("run", None)](
        cli_args(dataset="orders", date_from=day(5), date_to=day(3)), settings, sessions) == 0
    queued = [r for r in runs(sessions).values() if r.status == "queued"]
    assert [(r.trigger, r.partition_from, r.partition_to) for r in queued] == [("backfill", day(5), day(3))]


def raising_executor(sessions, settings, run_id, *, should_stop) -> None:
    raise RuntimeError("disk on fire")


def test_runs_list_and_cancel_from_the_command_line(sessions, settings, capsys):
    import json

    orders = make_dataset(sessions, "orders")
    queued = request(sessions, orders, day(1))
    cancel = cli_runs.COMMANDS[("runs", "cancel")]
    assert cancel(argparse.Namespace(id=queued, by="bob", json=True), settings, sessions) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    with pytest.raises(ValueError, match="already cancelled"):  # the CLI turns it into exit 2
        cancel(argparse.Namespace(id=queued, by="bob", json=True), settings, sessions)

    listing = argparse.Namespace(dataset="orders", status=None, limit=50, json=True)
    assert cli_runs.COMMANDS[("runs", "list")](listing, settings, sessions) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert (run["id"], run["dataset"], run["status"], run["error"]) == (
        queued, "orders", "cancelled", "cancelled by bob")


# ---- real worker processes --------------------------------------------------------------

def worker_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "monitors", "worker", "--lease-seconds", "1", "--poll-seconds", "0.1",
            "--no-schedules", "--executor", f"{__name__}:slow_executor", *extra]


def spawn(seconds: float, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "TEST_EXECUTOR_SECONDS": str(seconds)}
    return subprocess.Popen(worker_command(*extra), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def started(sessions, run_id: int) -> bool:
    run = runs(sessions)[run_id]
    return run.status == "running" and "started in pid" in run.log


def test_a_worker_killed_mid_run_leaves_a_run_that_is_failed_requeued_and_rerun(sessions, settings):
    run_id = request(sessions, make_dataset(sessions, "orders"), day(1))
    doomed = spawn(30)
    try:
        wait_for(lambda: started(sessions, run_id), 30, "the worker to start the run")
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate(timeout=10)
    lease_end = runs(sessions)[run_id].lease_expires_at
    wait_for(lambda: utcnow() > lease_end, 5, "the lease to run out")

    restarted = spawn(0, "--once")
    out, err = restarted.communicate(timeout=60)
    assert restarted.returncode == 0, err
    stored = runs(sessions)
    lost = stored[run_id]
    assert lost.status == "failed" and lost.error.startswith("worker lost (lease expired at ")
    [copy] = [r for r in stored.values() if r.retry_of == run_id]
    assert (copy.status, copy.partition_from, copy.trigger) == ("succeeded", day(1), lost.trigger)
    assert not [r for r in stored.values() if r.status in ("running", "queued")]


def test_sigterm_stops_a_worker_cleanly_and_the_run_resumes_later(sessions, settings):
    run_id = request(sessions, make_dataset(sessions, "orders"), day(1))
    worker = spawn(30)
    try:
        wait_for(lambda: started(sessions, run_id), 30, "the worker to start the run")
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err
    run = runs(sessions)[run_id]
    assert (run.status, run.claimed_by) == ("queued", None)

    again = spawn(0, "--once")
    again.communicate(timeout=60)
    assert again.returncode == 0
    assert runs(sessions)[run_id].status == "succeeded"


def test_a_running_worker_follows_the_config_file(sessions, settings):
    """Issue 13 #7: a dataset added to the YAML was not scheduled until some CLI command
    synced the config, and one removed from it stayed scheduled."""
    def declare(*names: str) -> None:
        settings.config_path.parent.mkdir(parents=True, exist_ok=True)
        settings.config_path.write_text("datasets:\n" + "".join(
            f"  - name: {name}\n    format: csv\n    source: landing/{name}\n"
            f"    schedule: '0 6 * * *'\n" for name in names), encoding="utf-8")

    def scheduled_names() -> set[str]:
        with sessions() as session:
            return {session.get(Dataset, int(job.split(":")[1])).name
                    for job in worker.scheduled_jobs()}

    declare("orders")
    worker = Worker(sessions, settings, executor=Recorder(sessions), **{**FAST, "reconcile_interval": 60})
    worker.start()
    try:
        wait_for(lambda: worker.scheduled_jobs(), 5, "the first reconcile")
        assert scheduled_names() == {"orders"}

        time.sleep(0.01)  # a new modification time
        declare("orders", "users")
        worker.reconcile()
        assert scheduled_names() == {"orders", "users"}

        declare("users")
        worker.reconcile()
        assert scheduled_names() == {"users"}
        with sessions() as session:  # its history stays
            assert session.scalar(select(Dataset).where(Dataset.name == "orders")) is not None
    finally:
        worker.stop()


def test_two_worker_processes_share_one_queue_and_run_each_partition_once(sessions, settings):
    # a dozen single-partition runs of different datasets, so both workers have work at once
    ids = [request(sessions, make_dataset(sessions, f"feed{n:02d}"), day(1)) for n in range(12)]
    workers = [spawn(0.5, "--once") for _ in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    stored = runs(sessions)
    assert {stored[i].status for i in ids} == {"succeeded"}
    # each run was executed by exactly one process, exactly once
    starts = [line for i in ids for line in stored[i].log.splitlines() if "started in pid" in line]
    assert len(starts) == len(ids)
    assert len({line.split()[-1] for line in starts}) == 2, "one worker did all the work"
    assert len(stored) == len(ids)  # nothing requeued or retried
