"""The run queue: requests, claims under a lease, cancel rules, recovery, catch-up."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from monitors.pipeline import queue
from store.models import Dataset, Run, RunStatus, utcnow

TODAY = utcnow().date()
LEASE = dt.timedelta(seconds=30)


def day(n: int) -> dt.date:
    """`n` days before today (UTC)."""
    return TODAY - dt.timedelta(days=n)


def make_datasets(sessions, *names: str) -> list[int]:
    with sessions.begin() as session:
        datasets = [Dataset(name=name, format="csv") for name in names]
        session.add_all(datasets)
        session.flush()
        return [d.id for d in datasets]


def request(sessions, dataset_id: int, first: dt.date, last: dt.date | None = None,
            trigger: str = "manual") -> int:
    with sessions.begin() as session:
        dataset = session.get(Dataset, dataset_id)
        return queue.request_run(session, dataset, first, last or first, trigger=trigger, by="ana").id


def status_of(sessions, run_id: int) -> Run:
    with sessions() as session:
        return session.get(Run, run_id)


def finish(sessions, run_id: int, status: str = "succeeded") -> bool:
    with sessions.begin() as session:
        return queue.finish(session, run_id, status)


@pytest.fixture
def orders(sessions) -> int:
    return make_datasets(sessions, "orders")[0]


def test_a_request_identical_to_a_queued_one_is_not_duplicated(sessions, orders):
    first = request(sessions, orders, day(3), day(1))
    assert request(sessions, orders, day(3), day(1), trigger="backfill") == first
    other_range = request(sessions, orders, day(2), day(1))
    assert other_range != first

    with sessions.begin() as session:
        queue.cancel(session, first, by="ana")
    # only a *queued* twin absorbs a request: after a cancel, asking again queues a new run
    again = request(sessions, orders, day(3), day(1))
    assert again not in (first, other_range)
    run = status_of(sessions, again)
    assert (run.status, run.trigger, run.requested_by, run.progress_total) == ("queued", "manual", "ana", 3)


def test_requests_are_validated(sessions, orders):
    with sessions.begin() as session:
        dataset = session.get(Dataset, orders)
        with pytest.raises(ValueError, match="after"):
            queue.request_run(session, dataset, day(1), day(2), trigger="manual", by="ana")
        with pytest.raises(ValueError, match="future"):
            queue.request_run(session, dataset, day(1), TODAY + dt.timedelta(days=1),
                              trigger="manual", by="ana")
        with pytest.raises(ValueError, match="unknown dataset"):
            queue.request_run(session, None, day(1), day(1), trigger="manual", by="ana")
        with pytest.raises(ValueError):
            queue.request_run(session, dataset, day(1), day(1), trigger="whenever", by="ana")
        # today's partition is allowed: it is not in the future
        assert queue.request_run(session, dataset, TODAY, TODAY, trigger="manual", by="ana").id


def test_one_run_per_dataset_at_a_time_in_request_order(sessions, orders):
    (users,) = make_datasets(sessions, "users")
    engine = sessions.kw["bind"]
    a1, a2 = request(sessions, orders, day(2)), request(sessions, orders, day(1))
    b1 = request(sessions, users, day(1))

    assert queue.claim_next(engine, "w1", LEASE).id == a1
    assert queue.claim_next(engine, "w2", LEASE).id == b1  # orders is busy: users goes next
    assert queue.claim_next(engine, "w2", LEASE) is None
    finish(sessions, a1)
    claimed = queue.claim_next(engine, "w2", LEASE)
    assert (claimed.id, claimed.status, claimed.claimed_by) == (a2, "running", "w2")
    assert claimed.lease_expires_at > utcnow()


def test_a_dataset_whose_running_run_lost_its_lease_is_claimable_again(sessions, orders):
    engine = sessions.kw["bind"]
    request(sessions, orders, day(2))
    later = request(sessions, orders, day(1))
    assert queue.claim_next(engine, "dead", dt.timedelta(seconds=1)) is not None
    assert queue.claim_next(engine, "w2", LEASE) is None
    after_expiry = utcnow() + dt.timedelta(seconds=2)
    assert queue.claim_next(engine, "w2", LEASE, now=after_expiry).id == later


def test_three_claimers_share_a_hundred_requests_without_a_double_claim(sessions):
    ids = make_datasets(sessions, *[f"ds{i:02d}" for i in range(20)])
    requested = {request(sessions, ids[i % 20], day(1 + i // 20)) for i in range(100)}
    assert len(requested) == 100
    engine = sessions.kw["bind"]
    claims: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        mine = claims.setdefault(name, [])
        try:
            idle = 0
            while idle < 20:
                run = queue.claim_next(engine, name, LEASE)
                if run is None:
                    idle += 1  # a busy dataset's next run waits for its running one
                    threading.Event().wait(0.01)
                    continue
                idle = 0
                mine.append(run.id)
                assert finish(sessions, run.id)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    everything = [run_id for mine in claims.values() for run_id in mine]
    assert len(everything) == len(set(everything)) == 100
    assert set(everything) == requested
    assert sum(1 for mine in claims.values() if mine) >= 2  # they did share the work


def test_only_queued_runs_can_be_cancelled(sessions, orders):
    engine = sessions.kw["bind"]
    running, queued = request(sessions, orders, day(2)), request(sessions, orders, day(1))
    queue.claim_next(engine, "w1", LEASE)

    with sessions.begin() as session:
        run = queue.cancel(session, queued, by="bob")
        assert (run.status, run.error) == ("cancelled", "cancelled by bob")
        assert "cancelled by bob" in run.log and run.finished_at is not None
    with sessions.begin() as session, pytest.raises(ValueError, match="is running"):
        queue.cancel(session, running, by="bob")
    finish(sessions, running)
    with sessions.begin() as session, pytest.raises(ValueError, match="already succeeded"):
        queue.cancel(session, running, by="bob")
    with sessions.begin() as session, pytest.raises(ValueError, match="already cancelled"):
        queue.cancel(session, queued, by="bob")
    with sessions.begin() as session, pytest.raises(ValueError, match="no run 999"):
        queue.cancel(session, 999, by="bob")
    with sessions.begin() as session, pytest.raises(ValueError, match="name"):
        queue.cancel(session, queued, by="")


def test_finish_and_renew_only_touch_a_run_that_is_still_running(sessions, orders):
    engine = sessions.kw["bind"]
    run_id = request(sessions, orders, day(1))
    queue.claim_next(engine, "w1", LEASE)
    with sessions.begin() as session:
        assert queue.renew_lease(session, run_id, "w1", LEASE)
        assert not queue.renew_lease(session, run_id, "someone else", LEASE)
        with pytest.raises(ValueError, match="final"):
            queue.finish(session, run_id, "running")
    assert finish(sessions, run_id, "failed")
    assert not finish(sessions, run_id, "succeeded")  # a late finish does not rewrite history
    assert status_of(sessions, run_id).status == "failed"


def test_runs_left_by_a_lost_worker_are_failed_and_requeued(sessions, orders):
    engine = sessions.kw["bind"]
    run_id = request(sessions, orders, day(3), day(1))
    claimed = queue.claim_next(engine, "dead-worker", dt.timedelta(seconds=1))
    with sessions.begin() as session:
        assert queue.recover_stale(session) == []  # the lease is still live
    later = claimed.lease_expires_at + dt.timedelta(seconds=1)
    with sessions.begin() as session:
        [(lost, copy)] = queue.recover_stale(session, later)
        copy_id = copy.id
    lost = status_of(sessions, run_id)
    assert lost.status == "failed"
    assert lost.error == f"worker lost (lease expired at {claimed.lease_expires_at.isoformat(timespec='seconds')})"
    copy = status_of(sessions, copy_id)
    assert (copy.status, copy.retry_of, copy.partition_from, copy.partition_to, copy.requested_by) == (
        "queued", run_id, day(3), day(1), "ana")
    with sessions.begin() as session:
        assert queue.recover_stale(session, later) == []  # recovered once, not per caller
        assert queue.latest_attempt(session, run_id).id == copy_id  # what `run --now` reports


def test_a_run_that_keeps_losing_its_worker_is_not_retried_forever(sessions, orders):
    engine = sessions.kw["bind"]
    request(sessions, orders, day(1))
    copies = []
    for _ in range(queue.MAX_ATTEMPTS):
        claimed = queue.claim_next(engine, "dies", dt.timedelta(seconds=1))
        with sessions.begin() as session:
            [(lost, copy)] = queue.recover_stale(session, claimed.lease_expires_at + dt.timedelta(seconds=1))
            copies.append(copy.id if copy else None)
    assert None not in copies[:-1] and copies[-1] is None
    assert status_of(sessions, lost.id).error.endswith(f"not retried after {queue.MAX_ATTEMPTS} attempts")


def test_list_runs_and_the_watermark(sessions, orders):
    (users,) = make_datasets(sessions, "users")
    engine = sessions.kw["bind"]
    with sessions() as session:
        assert queue.watermark(session, orders) is None
    old = request(sessions, orders, day(9), day(5), trigger="backfill")
    queue.claim_next(engine, "w1", LEASE)
    finish(sessions, old)
    failed = request(sessions, orders, day(4))
    queue.claim_next(engine, "w1", LEASE)
    finish(sessions, failed, "failed")
    request(sessions, users, day(1))

    with sessions() as session:
        assert queue.watermark(session, orders) == day(5)  # a failed run moves nothing
        runs = queue.list_runs(session)
        assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)
        assert {"id", "dataset", "status", "trigger", "started_at", "finished_at", "error",
                "partition_from", "partition_to", "progress_done", "progress_total", "stages",
                "requested_by"} <= set(runs[0])
        mine = queue.list_runs(session, dataset="orders", status="succeeded")
        assert [(r["id"], r["partition_from"], r["partition_to"], r["trigger"]) for r in mine] == [
            (old, day(9).isoformat(), day(5).isoformat(), "backfill")]
        assert [r["dataset"] for r in queue.list_runs(session, status="queued")] == ["users"]


def test_catch_up_requests_every_partition_since_the_watermark(sessions, orders):
    engine = sessions.kw["bind"]
    done = request(sessions, orders, day(5))
    queue.claim_next(engine, "w1", LEASE)
    finish(sessions, done)
    busy = request(sessions, orders, day(3))  # a queued rerun already covers this one

    with sessions.begin() as session:
        dataset = session.get(Dataset, orders)
        caught_up = queue.request_catch_up(session, dataset, today=TODAY)
        assert [(r.partition_from, r.partition_to, r.trigger) for r in caught_up] == [
            (day(4), day(4), "schedule"), (day(2), day(2), "schedule"), (day(1), day(1), "schedule")]
        assert queue.request_catch_up(session, dataset, today=TODAY) == []  # a second tick adds nothing
    assert status_of(sessions, busy).status == "queued"


def test_catch_up_of_a_never_run_dataset_starts_yesterday_and_is_bounded(sessions, orders):
    with sessions.begin() as session:
        dataset = session.get(Dataset, orders)
        [run] = queue.request_catch_up(session, dataset, today=TODAY)
        assert (run.partition_from, run.partition_to) == (day(1), day(1))
        run.status = RunStatus.succeeded
        run.partition_from = run.partition_to = day(400)
        session.flush()
        caught_up = queue.request_catch_up(session, dataset, today=TODAY, limit_days=10)
        assert [r.partition_from for r in caught_up] == [day(n) for n in range(10, 0, -1)]
