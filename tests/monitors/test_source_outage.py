"""A SQL source out of reach is an outage, not bad data: nothing is quarantined, the run
says "source unreachable" and fails so that the partition is tried again, and the alert
says outage; once the source is back the partition lands and the outage alert resolves."""
from __future__ import annotations

import datetime as dt
import shutil

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy import select

from monitors.catalog import sync_datasets
from monitors.config import load_config
from monitors.errors import Unreachable
from monitors.intake.ingest import ingest_sql
from monitors.lifecycle.alerts import list_alerts
from monitors.pipeline.run import execute_run
from store.models import Batch, Dataset, Run

# recent days judged on the wall clock, as a live worker judges them (SQL rows arrive when read)
DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=3)
CONTRACT = {"columns": [{"name": "id", "type": "integer"}, {"name": "amount", "type": "float"}]}


def warehouse(folder) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    source = f"sqlite:///{folder / 'warehouse.db'}"
    engine = sa.create_engine(source)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE payments (paid_on DATE, id INTEGER, amount FLOAT)"))
        for day in (DAY, DAY + dt.timedelta(days=1)):
            connection.execute(sa.text(f"INSERT INTO payments VALUES ('{day}', 1, 9.5), ('{day}', 2, 3.0)"))
    engine.dispose()
    return source


def run(sessions, settings, day: dt.date) -> Run:
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path), settings.home)
        dataset = session.scalar(select(Dataset).where(Dataset.name == "payments"))
        queued = Run(dataset_id=dataset.id, trigger="schedule", partition_from=day,
                     partition_to=day, requested_by="test")
        session.add(queued)
        session.flush()
        run_id = queued.id
    execute_run(sessions, settings, run_id, notify=False)
    with sessions() as session:
        return session.get(Run, run_id)


def test_an_unreachable_sql_source_is_an_outage_retried_not_a_quarantined_batch(
        settings, sessions, tmp_path):
    folder = tmp_path / "warehouse"
    source = warehouse(folder)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(yaml.safe_dump({"datasets": [{
        "name": "payments", "format": "sql", "source": source, "table": "payments",
        "partition_key": "paid_on", "contract": CONTRACT}]}))
    assert run(sessions, settings, DAY).status == "succeeded"

    folder.rename(tmp_path / "away")  # the database can no longer be opened
    down = run(sessions, settings, DAY + dt.timedelta(days=1))
    assert down.status == "failed"
    assert "source unreachable" in down.error and "retried at the next run" in down.error
    assert "source unreachable" in down.log
    with sessions() as session:
        batches = session.scalars(select(Batch.status).order_by(Batch.id)).all()
        alerts = list_alerts(session, dataset="payments")
    assert batches == ["ingested"]  # nothing quarantined, nothing landed
    assert [(a["monitor"], a["status"]) for a in alerts] == [("source:unreachable", "open")]
    assert alerts[0]["message"].startswith("[outage] payments where paid_on = ")
    assert "not a verdict on the data" in alerts[0]["message"]

    (tmp_path / "away").rename(folder)  # back: the next run lands the day and resolves it
    back = run(sessions, settings, DAY + dt.timedelta(days=1))
    assert back.status == "succeeded", back.error
    with sessions() as session:
        batches = session.scalars(select(Batch.status).order_by(Batch.id)).all()
        alerts = list_alerts(session, dataset="payments")
    assert batches == ["ingested", "ingested"]
    assert [(a["monitor"], a["status"]) for a in alerts] == [("source:unreachable", "resolved")]


@pytest.mark.parametrize("source", ["postgresql://nobody@127.0.0.1:1/warehouse",
                                    "sqlite:////nonexistent-folder/warehouse.db"])
def test_a_source_that_refuses_the_connection_raises_unreachable_and_stores_nothing(
        settings, sessions, source):
    with sessions.begin() as session:
        dataset = Dataset(name="payments", format="sql", source=source, table_name="payments",
                          partition_key="paid_on", contract=CONTRACT)
        session.add(dataset)
    with sessions.begin() as session, pytest.raises(Unreachable, match="source unreachable"):
        ingest_sql(session, session.get(Dataset, dataset.id), DAY)
    with sessions() as session:
        assert session.scalars(select(Batch)).all() == []
