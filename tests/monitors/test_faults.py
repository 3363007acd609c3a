"""A worker killed at a named point (monitors.faults) leaves no partial batch, no duplicate
metrics or alerts; its run is marked lost and redone, and ends where an uninterrupted run
ends. A file caught mid-write by the upstream is quarantined, then lands once complete."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from monitors.faults import POINTS
from monitors.pipeline import queue
from monitors.pipeline.run import execute_run
from monitors.settings import load_settings
from store.engine import open_store
from store.models import Alert, AlertEvent, AlertOccurrence, Batch, Dataset, Metric, Run
from tests.monitors.pipeline import CONFIG, DAYS, deliver, orders_csv, prepare, worker


def store_state(sessions) -> dict:
    """What a user could see of the store, free of ids and clocks, to compare two stores."""
    with sessions() as session:
        batches = session.execute(select(Batch.id, Batch.partition, Batch.status, Batch.rows,
                                         Batch.fingerprint).order_by(Batch.partition, Batch.id)).all()
        partition_of = {b.id: b.partition for b in batches}
        metrics = session.execute(select(Metric.batch_id, Metric.column, Metric.metric, Metric.key,
                                         Metric.value)).all()
        alerts = session.scalars(select(Alert).order_by(Alert.fingerprint)).all()
        occurrences = session.execute(select(Alert.fingerprint, AlertOccurrence.partition)
                                      .join(Alert, Alert.id == AlertOccurrence.alert_id)).all()
        events = session.execute(select(Alert.fingerprint, AlertEvent.kind)
                                 .join(Alert, Alert.id == AlertEvent.alert_id)).all()
    return {
        "batches": [(b.partition, b.status, b.rows, b.fingerprint) for b in batches],
        "metrics": sorted((partition_of[m.batch_id], m.column or "", m.metric, m.key,
                           None if m.value is None else round(m.value, 9)) for m in metrics),
        "alerts": [(a.fingerprint, a.monitor, a.status, a.occurrences, a.message) for a in alerts],
        "occurrences": sorted(occurrences),
        "events": sorted(events),
    }


def assert_consistent(state: dict) -> None:
    """No partial batch and nothing twice, whatever point the process died at."""
    metric_keys = [m[:4] for m in state["metrics"]]
    assert len(metric_keys) == len(set(metric_keys)), "a metric was stored twice"
    landed = {b[0] for b in state["batches"] if b[1] == "ingested"}
    assert {m[0] for m in state["metrics"]} == landed, "metric rows without their batch, or a batch without its metrics"
    per_batch = {p: sum(1 for m in state["metrics"] if m[0] == p) for p in landed}
    assert len(set(per_batch.values())) <= 1, f"a batch with part of its profile: {per_batch}"
    assert len(state["batches"]) == len({(b[0], b[3]) for b in state["batches"]}), "a delivery landed twice"
    assert len(state["occurrences"]) == len(set(state["occurrences"])), "an occurrence was stored twice"
    open_fingerprints = [a[0] for a in state["alerts"] if a[2] != "resolved"]
    assert len(open_fingerprints) == len(set(open_fingerprints)), "an alert was opened twice"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The store an uninterrupted run leaves (SQLite, in this process): what every killed
    and redone run must end with."""
    home = tmp_path_factory.mktemp("uninterrupted") / "home"
    settings = load_settings({"MONITORS_HOME": str(home)})
    engine, sessions = open_store(settings.db_url)
    run_id = prepare(settings, sessions)
    execute_run(sessions, settings, run_id, notify=False)
    state = store_state(sessions)
    engine.dispose()
    assert [b[1] for b in state["batches"]] == ["ingested", "ingested", "quarantined", "ingested"]
    monitors = {a[1] for a in state["alerts"]}
    assert {"contract", "not_null:amount"} <= monitors, state["alerts"]
    return state


# point to kill at -> (batches, alerts' partitions) the store must hold right after the kill
KILLS = {
    "ingest.profiling#2": (1, set()),       # the second day's file half read
    "ingest.writing#2": (1, set()),         # the second day's batch and metrics written
    "alerts.writing#1": (4, set()),         # every batch landed; the first day's alerts written
    "alerts.writing#3": (4, set(DAYS[:2])),  # two days' alerts committed, the third's written
}


def test_every_kill_point_is_exercised():
    assert {k.split("#")[0] for k in KILLS} == set(POINTS)


@pytest.mark.parametrize("kill_at", KILLS)
def test_a_worker_killed_mid_run_loses_nothing_and_the_redone_run_ends_as_an_uninterrupted_one(
        kill_at, settings, sessions, uninterrupted):
    run_id = prepare(settings, sessions)

    killed = worker(kill_at)
    assert killed.returncode == -9, killed.stderr[-2000:]
    after_kill = store_state(sessions)
    assert_consistent(after_kill)
    batches, alerted = KILLS[kill_at]
    assert len(after_kill["batches"]) == batches
    assert {p for _, p in after_kill["occurrences"]} == alerted
    with sessions() as session:
        run = session.get(Run, run_id)
        assert (run.status, run.progress_done) == ("running", len(alerted))

    time.sleep(2.1)  # the dead worker's lease runs out
    redone = worker()
    assert redone.returncode == 0, redone.stderr[-2000:]
    with sessions() as session:
        lost = session.get(Run, run_id)
        retry = session.scalar(select(Run).where(Run.retry_of == run_id))
        left = session.scalar(select(func.count(Run.id)).where(Run.status.in_(("queued", "running"))))
    assert lost.status == "failed" and lost.error.startswith("worker lost"), lost.error
    assert retry is not None and retry.status == "succeeded", retry and retry.error
    assert left == 0
    final = store_state(sessions)
    assert_consistent(final)
    assert final == uninterrupted


def test_a_file_caught_mid_write_is_quarantined_then_lands_once_complete(settings, sessions):
    run_id = prepare(settings, sessions)
    complete = orders_csv(DAYS[0])
    half = complete[: len(complete) // 2]
    assert not half.endswith("\n")  # cut inside a row, as a copy in progress is
    deliver(settings.home, DAYS[0], half)
    with sessions.begin() as session:
        session.get(Run, run_id).partition_to = DAYS[0]
    execute_run(sessions, settings, run_id, notify=False)
    with sessions() as session:
        [batch] = session.scalars(select(Batch)).all()
        assert batch.status == "quarantined"
        assert batch.reason.startswith("orders_2026-06-01.csv: CSV parse error: Expected 3 columns, got 2")
        assert batch.reason.endswith("(the file ends inside a row: truncated, or still being "
                                     "written upstream?)")
        assert session.scalar(select(func.count(Metric.id))) == 0
        [alert] = session.scalars(select(Alert).where(Alert.monitor == "contract")).all()
        assert alert.status == "open"

    deliver(settings.home, DAYS[0], complete)  # the upstream finishes writing
    with sessions.begin() as session:
        dataset = session.scalar(select(Dataset))
        rerun_id = queue.request_run(session, dataset, DAYS[0], DAYS[0], trigger="manual", by="test").id
    execute_run(sessions, settings, rerun_id, notify=False)
    with sessions() as session:
        statuses = session.execute(select(Batch.status, Batch.rows).order_by(Batch.id)).all()
        assert [tuple(s) for s in statuses] == [("quarantined", None), ("ingested", 200)]
        contract = session.scalar(select(Alert).where(Alert.monitor == "contract"))
        assert contract.status == "resolved"


def test_a_file_that_grows_while_it_is_read_is_not_landed(settings, sessions, monkeypatch):
    import monitors.intake.ingest

    run_id = prepare(settings, sessions)
    with sessions.begin() as session:
        session.get(Run, run_id).partition_to = DAYS[0]
    profile_stream = monitors.intake.ingest._profile_stream

    def upstream_still_writing(chunks, contract):
        metrics = profile_stream(chunks, contract)
        with (settings.home / "landing" / "orders" / f"orders_{DAYS[0]}.csv").open("a") as file:
            file.write("200,1.5,web\n")
        return metrics

    monkeypatch.setattr(monitors.intake.ingest, "_profile_stream", upstream_still_writing)
    execute_run(sessions, settings, run_id, notify=False)
    with sessions() as session:
        [batch] = session.scalars(select(Batch)).all()
        assert batch.status == "quarantined"
        assert batch.reason == ("orders_2026-06-01.csv: the file changed while it was being read "
                                "(still being written upstream?)")
        assert session.scalar(select(func.count(Metric.id))) == 0


def test_a_dead_webhook_leaves_the_run_succeeded_and_its_token_unlogged_and_is_sent_once_back(
        settings, sessions):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run_id = prepare(settings, sessions)
    config = {**CONFIG, "notifications": {"attempts": 2, "routes": [
        {"url": f"http://127.0.0.1:{port}/services/T01/B02/s3cr3t-token"}]}}
    settings.config_path.write_text(yaml.safe_dump(config))

    done = worker()

    assert done.returncode == 0, done.stderr[-2000:]
    with sessions() as session:
        run = session.get(Run, run_id)
        alerts = session.scalars(select(Alert)).all()
    assert run.status == "succeeded", run.error
    assert "notifications: 0 sent, 1 failed" in run.log
    assert alerts and all(a.status == "open" and a.notified_at is None for a in alerts)
    assert f"webhook 127.0.0.1:{port} failed 2 times, giving up" in done.stderr
    assert "s3cr3t" not in done.stderr + run.log and "/services/" not in done.stderr + run.log

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)  # the endpoint is back
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sessions.begin() as session:
            queue.request_run(session, session.scalar(select(Dataset)), DAYS[-1], DAYS[-1],
                              trigger="manual", by="test")
        assert worker().returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    [message] = received
    assert message["text"].startswith(f"orders: {len(alerts)} new alert")
    with sessions() as session:
        assert all(a.notified_at is not None for a in session.scalars(select(Alert)))


# ---- store faults: one line, exit 4, nothing written (issue 14 #4) -------------------------
# Before, each of these ended in SQLAlchemy's traceback (and a deleted file took writes that
# were then lost).

def cli(argv: list[str], capsys) -> tuple[int, str]:
    from monitors.cli import main

    code = main(argv)
    return code, capsys.readouterr().err


def test_an_unreachable_store_is_one_line_naming_it_without_its_password(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environ = {**os.environ, "MONITORS_HOME": str(tmp_path),
               "MONITORS_DB_URL": f"postgresql://monitors:s3cret@127.0.0.1:{port}/monitors"}
    done = subprocess.run([sys.executable, "-m", "monitors", "alerts", "list"], env=environ,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 4, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"error: store unreachable: postgresql://monitors:***@127.0.0.1:{port}")
    assert "s3cret" not in done.stderr


def sqlite_store(settings) -> Path:
    assert settings.db_url.startswith("sqlite"), "a SQLite file's fault: sqlite only"
    engine, _ = open_store(settings.db_url)
    engine.dispose()
    return Path(settings.db_url.removeprefix("sqlite:///"))


def a_file(settings) -> Path:
    path = settings.home / "drop" / "shop_2026-03-02.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,channel\n1,web\n2,app\n")
    return path


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # a SQLite file's fault
def test_a_read_only_store_refuses_a_write_in_one_line(settings, monkeypatch, capsys):
    database = sqlite_store(settings)
    # what a store file this user may not write looks like to SQLite (the tests run as root,
    # whom file modes do not stop)
    monkeypatch.setenv("MONITORS_DB_URL", f"sqlite:///file:{database}?mode=ro&uri=true")
    code, err = cli(["ingest", "--dataset", "shop", "--create", str(a_file(settings))], capsys)
    assert code == 4 and err.startswith("error: store is read-only: ") and err.count("\n") == 1, err
    assert cli(["datasets", "list", "--json"], capsys)[0] == 0  # reading still works


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # a SQLite file's fault
def test_a_corrupt_store_is_one_line_for_every_command(settings, capsys):
    database = sqlite_store(settings)
    database.write_bytes(b"this is not a database" * 100)
    for argv in (["alerts", "list"], ["datasets", "list", "--json"], ["runs", "list"]):
        code, err = cli(argv, capsys)
        assert code == 4, err
        assert err == (f"error: store is corrupt: {database}: file is not a database; restore it "
                       "from a backup, or move it aside to start an empty store\n")


def test_a_full_disk_is_one_line_and_nothing_is_landed(settings, sessions, capsys):
    from sqlalchemy import Engine, event
    from sqlalchemy.exc import OperationalError

    words = ("database or disk is full" if settings.db_url.startswith("sqlite")
             else "could not extend file \"base/1/2\": No space left on device")

    def full(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT"):
            raise OperationalError(statement, parameters, Exception(words))

    event.listen(Engine, "before_cursor_execute", full)
    try:
        code, err = cli(["ingest", "--dataset", "shop", "--create", str(a_file(settings))], capsys)
    finally:
        event.remove(Engine, "before_cursor_execute", full)
    assert code == 4 and err.startswith("error: store is full: ") and err.count("\n") == 1, err
    assert "nothing was written" in err
    with sessions() as session:
        assert session.scalar(select(func.count(Dataset.id))) == 0
        assert session.scalar(select(func.count(Batch.id))) == 0


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # a SQLite file's fault
def test_a_store_file_deleted_under_a_running_process_refuses_writes_and_is_not_recreated(
        settings, capsys):
    from monitors.lifecycle.alerts import comment
    from store.engine import StoreFault
    from tests.monitors.signals import add_dataset, fires, record

    database = sqlite_store(settings)
    engine, sessions = open_store(settings.db_url)
    with sessions.begin() as session:
        dataset_id = add_dataset(session, "shop")
    [alert_id] = record(sessions, [fires(dataset_id, DAYS[0])]).new
    database.unlink()
    with pytest.raises(StoreFault, match=f"store file gone: {database} was deleted"):
        with sessions.begin() as session:
            comment(session, alert_id, by="alice", note="looked at it")
    assert not database.exists()  # no empty store made in its place to write into
    engine.dispose()
