"""Deliveries racing for one partition: whatever the interleaving, one batch is in force.

Two to four `python -m monitors ingest` processes are started together on the same file or
on different files for one partition, as an upstream that retries or a worker and a person
both landing it do. Each is a process of its own, so only the store's locks (SQLite's
writer lock, PostgreSQL's row lock on the dataset) keep them apart. The files are large
enough (tens of thousands of rows) that their profiling overlaps.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import hypothesis
import pytest
from hypothesis import strategies as st

from store import queries
from store.engine import open_store
from store.models import BatchStatus

ROOT = Path(__file__).resolve().parents[2]
FIRST, RACED = "2026-05-01", "2026-05-02"


def write_csv(folder: Path, name: str, rows: int, seed: int) -> Path:
    path = folder / name
    lines = ["id,amount,country"]
    lines += [f"{i},{(i * 7 + seed) % 1000 / 10},{'ES' if (i + seed) % 3 else 'FR'}"
              for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def start_ingest(settings, path: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "MONITORS_HOME": str(settings.home), "MONITORS_DB_URL": settings.db_url}
    env.pop("MONITORS_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "monitors", "ingest", "--dataset", "sales",
                             str(path), "--json", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    return json.loads(out)


@pytest.mark.parametrize("copies", [2, 4])
@pytest.mark.parametrize("files", ["same", "different"])
def test_deliveries_racing_for_one_partition_leave_exactly_one_batch_in_force(settings, copies, files):
    landing = settings.home / "landing"
    landing.mkdir(parents=True)
    # the dataset exists before the race: creating it is not what is raced here
    finish(start_ingest(settings, write_csv(landing, f"sales_{FIRST}.csv", 10, 0), "--create"))

    if files == "same":
        paths = [write_csv(landing, f"sales_{RACED}.csv", 40_000, seed=0)] * copies
    else:
        paths = [write_csv(landing, f"sales_{RACED}_v{n}.csv", 40_000, seed=n)
                 for n in range(copies)]
    outcomes = [finish(p) for p in [start_ingest(settings, path) for path in paths]]

    engine, sessions = open_store(settings.db_url)
    try:
        with sessions() as session:
            raced = [b for b, _ in queries.list_batches(session) if str(b.partition) == RACED]
            in_force = [b for b in raced if b.status == BatchStatus.ingested]
            assert len(in_force) == 1, [(b.id, b.status, b.fingerprint[:8]) for b in raced]
            # the metrics are those of the batch in force alone: not doubled
            rows = queries.read_metric_series(session, in_force[0].dataset_id, "row_count")
            assert list(rows.values) == [10, 40_000]
            assert queries.count_metrics(session) == (
                queries.count_metrics(session, in_force[0].id)
                + queries.count_metrics(session, next(b.id for b, _ in queries.list_batches(session)
                                                      if str(b.partition) == FIRST)))
    finally:
        engine.dispose()
    statuses = sorted(o["status"] for o in outcomes)
    if files == "same":
        # one landed it; the others recognised it as the batch already in force
        assert statuses == ["ingested"] + ["unchanged"] * (copies - 1)
        assert len(raced) == 1
    else:
        assert statuses == ["ingested"] * copies
        assert sorted(b.status for b in raced) == sorted(
            [BatchStatus.ingested] + [BatchStatus.superseded] * (copies - 1))


# each example races on a partition of its own, so one store serves them all
_partitions = iter(dt.date(2026, 6, 1) + dt.timedelta(days=n) for n in range(1000))


@hypothesis.settings(max_examples=5, deadline=None, database=None,
                     suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture,
                                            hypothesis.HealthCheck.too_slow])
@hypothesis.given(contents=st.lists(st.integers(min_value=0, max_value=2), min_size=2, max_size=4))
def test_any_mix_of_racing_deliveries_leaves_exactly_one_batch_in_force(settings, contents):
    """2 to 4 deliveries, each of one of three contents (so the same and different files
    race together): one batch in force, its profile the only one stored for the partition,
    and every delivery either made a batch or was recognised as one already there."""
    landing = settings.home / "landing"
    if not landing.exists():
        landing.mkdir(parents=True)
        finish(start_ingest(settings, write_csv(landing, f"sales_{FIRST}.csv", 10, 0), "--create"))
    day = next(_partitions).isoformat()
    files = {}
    for c in set(contents):
        (landing / f"v{c}").mkdir(exist_ok=True)
        files[c] = write_csv(landing / f"v{c}", f"sales_{day}.csv", 20_000 + c, seed=c)
    outcomes = [finish(p) for p in [start_ingest(settings, files[c]) for c in contents]]

    engine, sessions = open_store(settings.db_url)
    try:
        with sessions() as session:
            raced = [b for b, _ in queries.list_batches(session) if str(b.partition) == day]
            (in_force,) = [b for b in raced if b.status == BatchStatus.ingested]
            assert all(b.status == BatchStatus.superseded for b in raced if b is not in_force)
            # the partition's profile is the batch in force's, once
            series = queries.read_metric_series(session, in_force.dataset_id, "row_count")
            assert series[series.index == day].tolist() == [in_force.rows]
    finally:
        engine.dispose()
    made = [o for o in outcomes if o["status"] == "ingested"]
    assert len(made) == len(raced)
    assert len(made) + sum(o["status"] == "unchanged" for o in outcomes) == len(contents)
