"""A worker and two dashboards change the same alerts at once, and no update is lost.

Each dashboard and the worker has its own engine, as separate processes have; the last
test runs them as separate processes, so SQLite's file lock and PostgreSQL's row locks
are what keeps them apart. Whatever the interleaving, an alert's stored status must be
the one its timeline leads to, every action reported as done must be on the timeline
once, and an action on an alert that changed since it was loaded is refused saying who
changed it and when.
"""
from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import event, select

from detectors.result import Finding
from monitors.lifecycle import mutes
from monitors.lifecycle.alerts import (
    AlertChanged,
    Signal,
    acknowledge,
    comment,
    get_alert,
    record_signals,
    resolve,
)
from store.engine import open_store
from store.models import Alert, AlertEvent, Dataset, MuteRule, utcnow

DAY = dt.date(2026, 6, 1)
CHANGED = re.compile(r"^alert \d+ was (opened|reopened|acknowledged|resolved \(\w+\)) by \S+ at "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC since you loaded it \(you saw it \w+\)")
ALREADY = re.compile(r"^alert \d+ is (already )?(acknowledged|resolved \(\w+\)) by \S+ at "
                     r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def signal(dataset_id: int, monitor: str, partition: dt.date, fires: bool) -> Signal:
    finding = Finding(at=pd.Timestamp(partition), value=412.0, expected=220.0, lower=180.0,
                      upper=260.0, score=5.1, detail=f"[seasonal] 412.0 on {partition}")
    # one alert per monitor whatever the partition, so every round touches the same rows
    return Signal(dataset_id=dataset_id, monitor=monitor, detector="seasonal", column=None,
                  severity="warning", partition=partition, finding=finding if fires else None,
                  point=False)


def run_round(sessions, dataset_id: int, verdicts: dict[str, bool], partition: dt.date) -> None:
    """What a run does for one partition: its verdicts in one transaction."""
    with sessions.begin() as session:
        record_signals(session, [signal(dataset_id, m, partition, f) for m, f in verdicts.items()],
                       now=utcnow(), config_version="cfg")


def open_alerts(sessions, count: int) -> tuple[int, list[int]]:
    with sessions.begin() as session:
        dataset = Dataset(name="sales", format="csv")
        session.add(dataset)
        session.flush()
        dataset_id = dataset.id
    run_round(sessions, dataset_id, {f"m{i}": True for i in range(count)}, DAY)
    with sessions() as session:
        return dataset_id, list(session.scalars(select(Alert.id).order_by(Alert.id)).all())


def assert_timeline_explains_state(sessions) -> dict[int, list[AlertEvent]]:
    """Replay every alert's timeline (in the order it was written) through the lifecycle's
    rules; the stored status must be where it leads. A change made on a state its author
    did not see shows up as a step the rules forbid (acknowledging a resolved alert, a
    firing recorded on a resolved alert without reopening it) or as a stored state the
    timeline does not end in."""
    allowed = {"opened": {None}, "reopened": {"resolved"}, "acknowledged": {"open"},
               "resolved": {"open", "acknowledged"}, "updated": {"open", "acknowledged"}}
    after = {"opened": "open", "reopened": "open", "acknowledged": "acknowledged",
             "resolved": "resolved"}
    timelines = {}
    with sessions() as session:
        for alert in session.scalars(select(Alert).order_by(Alert.id)).all():
            events = list(session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id)
                                          .order_by(AlertEvent.id)).all())
            status, resolution = None, None
            for n, e in enumerate(events):
                if e.kind in allowed:
                    assert status in allowed[e.kind], (
                        f"alert {alert.id}: {e.kind} by {e.by} on a {status} alert, after "
                        f"{[(x.kind, x.by, x.note) for x in events[max(0, n - 4):n]]}")
                if e.kind in after:
                    status = after[e.kind]
                    resolution = None if status != "resolved" else (
                        "auto" if e.by == "system" else e.note.split(":")[0])
            assert (alert.status, alert.resolution) == (status, resolution), (
                f"alert {alert.id} stored {alert.status}/{alert.resolution}, its timeline ends "
                f"{status}/{resolution}: {[(x.kind, x.by, x.note) for x in events]}")
            assert (alert.resolved_at is not None) == (status == "resolved")
            timelines[alert.id] = events
    return timelines


def two_dashboards(settings):
    """Two session factories on their own engines, as two dashboard processes have."""
    stores = [open_store(settings.db_url) for _ in range(2)]
    return stores, [factory for _, factory in stores]


# ---- two people, one alert -------------------------------------------------------------

def test_the_second_of_two_people_acting_on_what_they_loaded_is_told_who_changed_it(settings, sessions):
    _, [alert_id] = open_alerts(sessions, 1)
    stores, (ana_store, bo_store) = two_dashboards(settings)
    try:
        with ana_store() as session:
            ana_saw = get_alert(session, alert_id)["status"]
        with bo_store() as session:
            bo_saw = get_alert(session, alert_id)["status"]
        assert ana_saw == bo_saw == "open"

        with ana_store.begin() as session:
            resolve(session, alert_id, by="ana", resolution="fixed", seen=ana_saw)
        with bo_store.begin() as session, pytest.raises(AlertChanged) as refused:
            acknowledge(session, alert_id, by="bo", note="on it", seen=bo_saw)
        # a comment changes no state: it applies whatever happened since
        with bo_store.begin() as session:
            comment(session, alert_id, by="bo", note="was it the feed?")
    finally:
        for engine, _ in stores:
            engine.dispose()

    assert CHANGED.match(str(refused.value)), str(refused.value)
    assert f"alert {alert_id} was resolved (fixed) by ana at " in str(refused.value)
    assert str(refused.value).endswith("(you saw it open); reload it and decide again")
    timeline = assert_timeline_explains_state(sessions)[alert_id]
    assert [(e.kind, e.by) for e in timeline] == [
        ("opened", "system"), ("resolved", "ana"), ("commented", "bo")]


def test_an_action_on_a_state_that_only_fired_again_applies_on_top(settings, sessions):
    dataset_id, [alert_id] = open_alerts(sessions, 1)
    with sessions() as session:
        saw = get_alert(session, alert_id)["status"]
    run_round(sessions, dataset_id, {"m0": True}, DAY + dt.timedelta(days=1))
    with sessions.begin() as session:
        acknowledge(session, alert_id, by="ana", seen=saw)
    timeline = assert_timeline_explains_state(sessions)[alert_id]
    assert [e.kind for e in timeline] == ["opened", "updated", "acknowledged"]


# ---- a person and the worker, interleaved exactly ---------------------------------------

def _in_thread(work) -> threading.Thread:
    failures = []

    def target():
        try:
            work()
        except BaseException as exc:  # reported by the test, not lost in the thread
            failures.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.failures = failures
    thread.start()
    return thread


def _just_before_writing(session, work) -> list[threading.Thread]:
    """Start `work` in another thread when `session` is about to write what it read, and
    give it a second: without locks it commits in between."""
    started = []

    def hook(*_):
        if not started:
            started.append(_in_thread(work))
            started[0].join(timeout=1)

    event.listen(session, "before_flush", hook)
    return started


def test_a_run_resolving_while_someone_acknowledges_is_not_undone(settings, sessions):
    dataset_id, [alert_id] = open_alerts(sessions, 1)
    stores, (dashboard, worker) = two_dashboards(settings)
    try:
        with dashboard.begin() as session:
            started = _just_before_writing(session, lambda: run_round(
                worker, dataset_id, {"m0": False}, DAY + dt.timedelta(days=1)))
            acknowledge(session, alert_id, by="ana")
        started[0].join(timeout=60)
    finally:
        for engine, _ in stores:
            engine.dispose()
    assert not started[0].failures, started[0].failures
    timeline = assert_timeline_explains_state(sessions)[alert_id]
    # the run's pass came second: it resolves the acknowledged alert
    assert [(e.kind, e.by) for e in timeline] == [
        ("opened", "system"), ("acknowledged", "ana"), ("resolved", "system")]


def test_someone_resolving_while_a_run_fires_again_does_not_hide_the_firing(settings, sessions):
    dataset_id, [alert_id] = open_alerts(sessions, 1)
    stores, (dashboard, worker) = two_dashboards(settings)
    refused = []

    def ana_resolves():
        try:
            with dashboard.begin() as session:
                resolve(session, alert_id, by="ana", resolution="fixed")
        except ValueError as exc:
            refused.append(exc)

    try:
        with worker.begin() as session:
            started = _just_before_writing(session, ana_resolves)
            record_signals(session, [signal(dataset_id, "m0", DAY + dt.timedelta(days=1), True)],
                           now=utcnow(), config_version="cfg")
        started[0].join(timeout=60)
    finally:
        for engine, _ in stores:
            engine.dispose()
    assert not started[0].failures and not refused, (started[0].failures, refused)
    timeline = assert_timeline_explains_state(sessions)[alert_id]
    # the firing came first and changed no status, so ana's resolve still applies
    assert [(e.kind, e.by) for e in timeline] == [
        ("opened", "system"), ("updated", "system"), ("resolved", "ana")]


def test_of_two_people_expiring_one_mute_at_once_the_second_is_told_who_did(settings, sessions):
    with sessions.begin() as session:
        session.add(Dataset(name="sales", format="csv"))
        session.flush()
        mute_id = mutes.add_mute(session, matchers={"dataset": "sales"}, reason="reload",
                                 by="cy", ends_at=utcnow() + dt.timedelta(days=1),
                                 now=utcnow()).id
    stores, (ana_store, bo_store) = two_dashboards(settings)
    outcomes = {}

    def expire(name, store):
        try:
            with store.begin() as session:
                mutes.expire(session, mute_id, by=name, now=utcnow())
        except ValueError as exc:
            outcomes[name] = str(exc)
        else:
            outcomes[name] = "done"

    try:
        with ana_store.begin() as session:
            started = _just_before_writing(session, lambda: expire("bo", bo_store))
            mutes.expire(session, mute_id, by="ana", now=utcnow())
            outcomes["ana"] = "done"
        started[0].join(timeout=60)
    finally:
        for engine, _ in stores:
            engine.dispose()
    assert outcomes["ana"] == "done"
    assert re.match(rf"mute {mute_id} already expired at .* \(expired by ana\)$", outcomes["bo"]), outcomes
    with sessions() as session:
        assert session.get(MuteRule, mute_id).expired_by == "ana"


# ---- a worker and two dashboards as separate processes ---------------------------------

ALERTS = 4
SECONDS = 5  # how long the worker keeps running rounds: as long as the people act
ACTIONS = 60


def _start_together(barrier: str, name: str) -> float:
    """Say this process is ready, wait for the three of them: the time they all were."""
    Path(barrier, name).touch()
    while len(list(Path(barrier).iterdir())) < 3:
        time.sleep(0.01)
    return time.time()


def worker_process(dataset_id: int, seed: int, barrier: str) -> int:
    """Fire or pass every monitor on a new partition each round, as daily runs do."""
    from monitors.settings import load_settings

    engine, sessions = open_store(load_settings().db_url)
    rng = random.Random(seed)
    start_at = _start_together(barrier, "worker")
    rounds = 0
    while time.time() < start_at + SECONDS:
        rounds += 1
        run_round(sessions, dataset_id, {f"m{i}": rng.random() < 0.7 for i in range(ALERTS)},
                  DAY + dt.timedelta(days=rounds))
        time.sleep(rng.uniform(0, 0.03))
    engine.dispose()
    return rounds


def dashboard_process(name: str, seed: int, barrier: str) -> list[tuple[str, int, str, str, str]]:
    """Load a monitor's latest alert, think a moment, act on what was loaded through the
    dashboard's services; report (action, alert, token, outcome, message) for each."""
    import streamlit as st

    from dashboard import services

    rng = random.Random(seed)
    reports = []
    services.session_factory()  # connected before the start, as a running dashboard is
    _start_together(barrier, name)
    for n in range(ACTIONS):
        with services.session_factory()() as session:
            alert_id = session.scalar(select(Alert.id).where(
                Alert.monitor == f"m{rng.randrange(ALERTS)}").order_by(Alert.id.desc()).limit(1))
            saw = get_alert(session, alert_id)["status"]
        time.sleep(rng.uniform(0.02, 0.1))  # a person reads before they click
        token = f"{name}-{n}"
        # what the page lets them do with what they saw
        action = rng.choice({"open": ["acknowledge", "resolve", "comment"],
                             "acknowledged": ["resolve", "comment"],
                             "resolved": ["comment"]}[saw])
        if action == "comment":
            services.comment_alert(alert_id, by=name, note=token)
            done, refused = [alert_id], []
        elif action == "acknowledge":
            done, refused = services.acknowledge_alerts([alert_id], by=name, note=token,
                                                        seen={alert_id: saw})
        else:
            done, refused = services.resolve_alerts([alert_id], by=name, resolution="fixed",
                                                    note=token, seen={alert_id: saw})
        reports.append((action, alert_id, token, "done" if done else "refused",
                        "; ".join(refused)))
    st.cache_resource.clear()
    return reports


def test_a_worker_and_two_dashboards_in_separate_processes_lose_nothing(settings, sessions, tmp_path):
    dataset_id, _ = open_alerts(sessions, ALERTS)
    # the children find the store through the same MONITORS_HOME / MONITORS_DB_URL
    assert os.environ["MONITORS_HOME"] == str(settings.home)
    barrier = tmp_path / "ready"
    barrier.mkdir()
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("spawn")) as pool:
        worker = pool.submit(worker_process, dataset_id, 1, str(barrier))
        dashboards = {name: pool.submit(dashboard_process, name, seed, str(barrier))
                      for seed, name in enumerate(["ana", "bo"], start=2)}
        rounds = worker.result(timeout=600)
        reports = {name: future.result(timeout=600) for name, future in dashboards.items()}
    assert rounds > 20

    timelines = assert_timeline_explains_state(sessions)
    with sessions() as session:
        unresolved = session.scalars(select(Alert.monitor).where(Alert.status != "resolved")).all()
    assert len(unresolved) == len(set(unresolved)), "a monitor has two unresolved alerts"
    notes = {}
    for alert_id, events in timelines.items():
        for e in events:
            notes.setdefault((alert_id, e.kind, e.by, e.note), []).append(e)
    expected_note = {"acknowledge": ("acknowledged", "{}"), "resolve": ("resolved", "fixed: {}"),
                     "comment": ("commented", "{}")}
    outcomes = {"done": 0, "changed": 0, "already": 0}
    for name, rows in reports.items():
        assert len(rows) == ACTIONS
        for action, alert_id, token, outcome, message in rows:
            kind, note = expected_note[action]
            stored = notes.get((alert_id, kind, name, note.format(token)), [])
            if outcome == "done":
                assert len(stored) == 1, f"{name}'s {action} {token} is stored {len(stored)} times"
                outcomes["done"] += 1
            else:
                assert not stored, f"{name}'s refused {action} {token} was stored"
                assert CHANGED.match(message) or ALREADY.match(message), message
                outcomes["changed" if CHANGED.match(message) else "already"] += 1
    # the run did change statuses under the people's feet, and they were told
    assert outcomes["done"] and outcomes["changed"], outcomes
    resolved_by_run = sum(1 for events in timelines.values() for e in events
                          if e.kind == "resolved" and e.by == "system")
    reopened = sum(1 for events in timelines.values() for e in events if e.kind == "reopened")
    assert resolved_by_run and reopened, (resolved_by_run, reopened)
