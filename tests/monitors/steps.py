"""A small file dataset whose daily volume steps up for good: the histories the trust tests
(one alert per change, accepting the new normal) replay as live daily runs."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy import select

from monitors.catalog import sync_datasets
from monitors.config import load_config
from monitors.pipeline.run import execute_run
from store.models import Dataset, Run

NAME = "orders"
START = dt.date(2026, 3, 1)
# the id is an identifier (sensitive): its mean follows the row count and means nothing
CONTRACT = {"columns": [{"name": "id", "type": "integer", "nullable": False, "sensitive": True},
                        {"name": "amount", "type": "float"},
                        {"name": "channel", "type": "string"}]}


def config(*, contract: bool = True, **extra) -> dict:
    dataset = {"name": NAME, "format": "csv", "source": f"landing/{NAME}", **extra}
    if contract:
        dataset["contract"] = CONTRACT
    return {"datasets": [dataset],
            "notifications": {"routes": [{"url": "https://hooks.example.com/services/T/B/x"}]}}


def write_config(settings, **options) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(yaml.safe_dump(config(**options)))


def rows_on(day: int, step_at: int | None, seed: int = 3) -> int:
    """~1000 rows a day with a weekly season and noise, 60% more from `step_at` on."""
    rng = np.random.default_rng(seed * 1000 + day)
    rows = 1000 * (1 + 0.08 * np.sin(2 * np.pi * day / 7)) + rng.normal(0, 15)
    if step_at is not None and day >= step_at:
        rows *= 1.6
    return int(rows)


def deliver(home: Path, partition: dt.date, rows: int, *, arrived: dt.datetime | None = None,
            seed: int = 0) -> Path:
    rng = np.random.default_rng(seed + partition.toordinal())
    lines = ["id,amount,channel"]
    amounts = rng.gamma(4.0, 12.0, rows)
    for i in range(rows):
        lines.append(f"{i},{amounts[i]:.2f},{('web', 'app', 'branch')[i % 3]}")
    path = home / "landing" / NAME / f"{NAME}_{partition}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    # on time by default: the morning after its day
    arrived = arrived or dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(1), dt.UTC)
    os.utime(path, (arrived.timestamp(), arrived.timestamp()))
    return path


def run(sessions, settings, start: dt.date, end: dt.date, *, trigger="schedule",
        now: dt.datetime | None = None, sender=None, notify: bool = False) -> Run:
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path), settings.home)
        dataset = session.scalar(select(Dataset).where(Dataset.name == NAME))
        queued = Run(dataset_id=dataset.id, trigger=trigger, partition_from=start,
                     partition_to=end, requested_by="test")
        session.add(queued)
        session.flush()
        run_id = queued.id
    execute_run(sessions, settings, run_id, now=now, notify=notify, sender=sender)
    with sessions() as session:
        done = session.get(Run, run_id)
        assert done.status == "succeeded", done.error
        return done


def live_morning(partition: dt.date) -> dt.datetime:
    """When the daily run of `partition` happens: the morning after, past its deadline."""
    return dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(7), dt.UTC)
