"""The database out of reach for 30 s: a worker waits and then does its work, without a
restart. PostgreSQL is stopped (a server of this test's own); SQLite is held under an
exclusive lock by another process, which is how a SQLite store becomes unusable."""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from monitors.pipeline import queue
from monitors.settings import Settings, load_settings
from store.engine import open_store
from store.models import Dataset, Run, utcnow
from tests.monitors.pipeline import DAYS, ROOT, prepare, worker_command
from tests.postgres import PostgresServer

OUTAGE_SECONDS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path, monkeypatch) -> Iterator[tuple[Settings, object]]:
    """Settings, and a context manager that takes the database away for a while."""
    home = tmp_path / "home"
    monkeypatch.setenv("MONITORS_HOME", str(home))
    monkeypatch.delenv("MONITORS_CONFIG", raising=False)
    if request.param == "sqlite":
        monkeypatch.delenv("MONITORS_DB_URL", raising=False)
        settings = load_settings()
        yield settings, lambda: _locked(settings)
        return
    server = PostgresServer(request.getfixturevalue("postgres_binaries"))
    server.start()
    try:
        monkeypatch.setenv("MONITORS_DB_URL", server.create_database("outage"))
        yield load_settings(), lambda: _stopped(server)
    finally:
        server.remove()


@contextlib.contextmanager
def _stopped(server: PostgresServer) -> Iterator[None]:
    server.stop()
    try:
        yield
    finally:
        server.start()


@contextlib.contextmanager
def _locked(settings: Settings) -> Iterator[None]:
    # another process, as a backup tool or a stuck writer would be
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None);"
                         " c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); sys.stdin.read()",
         str(settings.home / "monitors.db")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            sqlite3.connect(settings.home / "monitors.db", timeout=0.1).execute(
                "UPDATE runs SET log = log WHERE 0")
        yield
    finally:
        holder.communicate("", timeout=10)


def run_status(sessions, run_id: int) -> str | None:
    with sessions() as session:
        return session.scalar(select(Run.status).where(Run.id == run_id))


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_worker_waits_out_a_30_second_outage_then_does_its_work(store, tmp_path):
    settings, outage = store
    engine, sessions = open_store(settings.db_url)
    first = prepare(settings, sessions)
    engine.dispose()  # the server must be free to stop
    log = tmp_path / "worker.log"

    with log.open("w") as err:
        with outage():
            # started while its database is out of reach: it waits instead of dying
            process = subprocess.Popen(worker_command(), cwd=ROOT, env=dict(os.environ),
                                       stdout=subprocess.DEVNULL, stderr=err)
            time.sleep(5)
            assert process.poll() is None, log.read_text()[-2000:]
        back = utcnow()
        engine, sessions = open_store(settings.db_url)
        try:
            wait_until(lambda: run_status(sessions, first) == "succeeded", 60,
                       "the run queued before the worker started")
            with outage():  # then taken away from the worker at work
                time.sleep(OUTAGE_SECONDS)
                assert process.poll() is None, log.read_text()[-2000:]
            with sessions.begin() as session:
                dataset = session.scalar(select(Dataset))
                second = queue.request_run(session, dataset, DAYS[0], DAYS[0], trigger="manual",
                                           by="test").id
            wait_until(lambda: run_status(sessions, second) == "succeeded", 60,
                       "a run queued after the outage")
            with sessions() as session:
                assert session.get(Run, first).started_at >= back - dt.timedelta(seconds=1)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            engine.dispose()
    assert process.returncode == 0, log.read_text()[-2000:]
