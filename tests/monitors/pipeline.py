"""A small file pipeline for the fault and outage tests: one CSV dataset with a static
check, four days delivered on time (one of them broken), and a worker subprocess."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy import select

from monitors.catalog import sync_datasets
from monitors.config import load_config
from monitors.pipeline import queue
from store.models import Dataset

ROOT = Path(__file__).resolve().parents[2]
FIRST = dt.date(2026, 6, 1)
DAYS = [FIRST + dt.timedelta(days=n) for n in range(4)]
BROKEN = DAYS[2]  # delivered with a text in an integer column: quarantined
CONFIG = {
    "datasets": [{
        "name": "orders", "format": "csv", "source": "landing/orders",
        "contract": {"columns": [{"name": "id", "type": "integer", "nullable": False},
                                 {"name": "amount", "type": "float"},
                                 {"name": "channel", "type": "string"}]},
        "checks": [{"check": "not_null", "column": "amount", "severity": "warning"}],
    }],
}


def orders_csv(partition: dt.date, rows: int = 200) -> str:
    lines = ["id,amount,channel"]
    for i in range(rows):
        amount = "" if i % 40 == 0 else f"{(i * 7 + partition.day) % 97 + 0.5}"
        lines.append(f"{i},{amount},{('web', 'app', 'branch')[i % 3]}")
    if partition == BROKEN:
        lines[100] = "one hundred,1.0,web"
    return "\n".join(lines) + "\n"


def deliver(home: Path, partition: dt.date, text: str) -> Path:
    path = home / "landing" / "orders" / f"orders_{partition}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    # delivered on time, the morning after its day: no freshness alert to depend on the clock
    arrived = dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(1), dt.UTC).timestamp()
    os.utime(path, (arrived, arrived))
    return path


def prepare(settings, sessions) -> int:
    """The config, the four days' files, and a run requested for them: its id."""
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(yaml.safe_dump(CONFIG))
    for partition in DAYS:
        deliver(settings.home, partition, orders_csv(partition))
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path), settings.home)
        dataset = session.scalar(select(Dataset).where(Dataset.name == "orders"))
        return queue.request_run(session, dataset, DAYS[0], DAYS[-1], trigger="manual", by="test").id


def worker_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "monitors", "worker", "--no-schedules", "--lease-seconds", "2",
            "--poll-seconds", "0.1", *extra]


def worker(kill_at: str | None = None) -> subprocess.CompletedProcess:
    """`worker --once` in a process of its own, dying at `kill_at` (monitors.faults)."""
    env = {k: v for k, v in os.environ.items() if k != "MONITORS_KILL_AT"}
    if kill_at:
        env["MONITORS_KILL_AT"] = kill_at
    return subprocess.run(worker_command("--once"), cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
