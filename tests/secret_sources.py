"""A store whose secrets are easy to spot: SQL datasets whose password is PASSWORD (one that
connects, one whose server is down), webhooks whose URLs carry TOKEN (both dead), and on
PostgreSQL a store URL with PASSWORD.
The secrets tests then look for PASSWORD and TOKEN in everything a person or a log sees."""
from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from monitors.catalog import find_dataset, sync_datasets
from monitors.config import load_config
from monitors.pipeline import queue
from monitors.settings import Settings, load_settings
from store.engine import open_store

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Pw4leak-zq81Hx"
TOKEN = "TkN4leak-u27Wd"
DAY = dt.date(2026, 3, 2)
_numbers = itertools.count()


@dataclass
class Leaky:
    settings: Settings
    sessions: sa.orm.sessionmaker
    environ: dict[str, str]
    run_ids: list[int]


def dead_port() -> int:
    """A local port nothing listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _warehouse(server: str) -> str:
    """A fresh database on the test server with a `payments` table of two days."""
    import psycopg

    name = f"warehouse_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    engine = sa.create_engine(f"{server}/{name}")
    table = sa.Table("payments", sa.MetaData(), sa.Column("paid_on", sa.Date),
                     sa.Column("amount", sa.Float), sa.Column("region", sa.Text))
    with engine.begin() as connection:
        table.create(connection)
        connection.execute(table.insert(), [
            {"paid_on": DAY + dt.timedelta(days=d), "amount": 10.0 * i, "region": "north"}
            for d in range(2) for i in range(1, 6)])
    engine.dispose()
    return name


def with_password(url: str) -> str:
    # the test server trusts every login, so any password connects
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


CONTRACT = "{columns: [{name: amount, type: float}, {name: region, type: string}]}"


def leaky_store(settings: Settings, server: str, monkeypatch) -> Leaky:
    """The store of `settings` (on PostgreSQL, reopened through a URL with PASSWORD) with
    two SQL datasets naming PASSWORD as ${WAREHOUSE_PASSWORD} (one connects, one's server
    is down) and two dead webhooks carrying TOKEN configured; no run yet."""
    if settings.db_url.startswith("postgresql"):
        monkeypatch.setenv("MONITORS_DB_URL", with_password(settings.db_url))
    monkeypatch.setenv("WAREHOUSE_PASSWORD", PASSWORD)
    monkeypatch.setenv("ONCALL_WEBHOOK", f"http://127.0.0.1:{dead_port()}/services/T0/B1/{TOKEN}")
    settings = load_settings()
    reference = "${WAREHOUSE_PASSWORD}"
    warehouse = f"{server}/{_warehouse(server)}".replace("postgres@", f"postgres:{reference}@", 1)
    down = f"postgresql://reader:{reference}@127.0.0.1:{dead_port()}/warehouse"
    datasets = "".join(
        f"  - name: {name}\n    format: sql\n    source: \"{source}\"\n    table: payments\n"
        f"    partition_key: paid_on\n    contract: {CONTRACT}\n"
        for name, source in [("payments", warehouse), ("payments_down", down)])
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(
        f"datasets:\n{datasets}"
        "notifications:\n  attempts: 1\n  routes:\n"
        f"    - url: http://127.0.0.1:{dead_port()}/services/T0/B0/{TOKEN}\n"
        "    - url_env: ONCALL_WEBHOOK\n")
    _, sessions = open_store(settings.db_url)
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path, settings), settings.home)
    return Leaky(settings, sessions, {**os.environ}, [])


def request(leaky: Leaky, dataset: str, day: dt.date) -> int:
    with leaky.sessions.begin() as session:
        run = queue.request_run(session, find_dataset(session, dataset), day, day,
                                trigger=queue.RunTrigger.manual, by="test")
        leaky.run_ids.append(run.id)
        return run.id


def cli(leaky: Leaky, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitors", *args], cwd=ROOT, env=leaky.environ,
                          capture_output=True, text=True, timeout=300)


def store_text(leaky: Leaky) -> dict[str, str]:
    """Every table's rows as text, by table."""
    engine = leaky.sessions.kw["bind"]
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.connect() as connection:
        return {table.name: "\n".join(str(row) for row in connection.execute(sa.select(table)))
                for table in metadata.sorted_tables}
