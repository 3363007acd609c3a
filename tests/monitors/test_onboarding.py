"""Quiet onboarding: history landed late is not late, a new dataset is not judged before it
has a history, a late file for a missing day is picked up, and a contract is optional."""
from __future__ import annotations

import datetime as dt
import time

import sqlalchemy as sa
import yaml
from sqlalchemy import select

from monitors.contract import Contract
from monitors.judge.evaluate import MetricHistory, evaluate_metric
from monitors.judge.plan import plan_monitors
from monitors.lifecycle.alerts import list_alerts
from monitors.pipeline.worker import Worker
from store import queries
from store.models import Alert, Batch, Dataset, Run
from tests.monitors import steps

HOUR = dt.timedelta(hours=1)


def day(n: int) -> dt.date:
    return steps.START + dt.timedelta(days=n)


def past_deadline(n: int, hours: float) -> dt.datetime:
    """`hours` after day n's deadline (6 h after its day ends)."""
    return dt.datetime.combine(day(n + 1), dt.time(6), dt.UTC) + hours * HOUR


def monitor_alerts(sessions, monitor: str) -> list[dict]:
    with sessions() as session:
        return [a for a in list_alerts(session, monitor=monitor,
                                       now=steps.live_morning(day(400)))]


def test_a_backfill_of_history_raises_no_late_alerts_but_a_late_day_after_it_does(settings,
                                                                                    sessions):
    steps.write_config(settings)
    landed = past_deadline(60, 1)  # a year of history would be the same: all of it lands today
    for n in range(30):
        steps.deliver(settings.home, day(n), steps.rows_on(n, None), arrived=landed)
    steps.run(sessions, settings, day(0), day(29), trigger="backfill", now=landed + HOUR)
    assert monitor_alerts(sessions, "freshness:late") == []

    # watched from then on: a day whose deadline passed while watching is late
    steps.deliver(settings.home, day(61), steps.rows_on(61, None), arrived=past_deadline(61, 5))
    steps.run(sessions, settings, day(61), day(61), now=past_deadline(61, 6))
    late = monitor_alerts(sessions, "freshness:late")
    assert [a["partition"] for a in late] == [day(61).isoformat()]


def test_a_corrected_redelivery_of_an_old_partition_is_not_late(settings, sessions):
    steps.write_config(settings)
    for n in range(3):
        steps.deliver(settings.home, day(n), steps.rows_on(n, None))
        steps.run(sessions, settings, day(n), day(n), now=steps.live_morning(day(n)))
    # weeks later, day 1 is delivered again, corrected, and rerun
    steps.deliver(settings.home, day(1), steps.rows_on(1, None) + 7, arrived=past_deadline(30, 0))
    steps.run(sessions, settings, day(1), day(1), trigger="manual", now=past_deadline(30, 1))
    with sessions() as session:
        statuses = sorted(session.scalars(select(Batch.status).where(Batch.partition == day(1))))
    assert statuses == ["ingested", "superseded"]
    assert monitor_alerts(sessions, "freshness:late") == []


def test_a_new_dataset_is_not_judged_for_breakouts_before_it_has_a_history(settings, sessions):
    steps.write_config(settings)
    for n in range(16):  # a step on its tenth day: part of its onboarding, not a change
        steps.deliver(settings.home, day(n), steps.rows_on(n, 9))
        steps.run(sessions, settings, day(n), day(n), now=steps.live_morning(day(n)))
    assert monitor_alerts(sessions, "volume:breakouts") == []
    with sessions() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == steps.NAME))
        spec = next(s for s in plan_monitors(dataset.kind, Contract.model_validate(dataset.contract),
                                             None) if s.name == "volume:breakouts")
        history = MetricHistory(queries.read_metrics(session, dataset.id))
        verdict = evaluate_metric(spec, history, day(15))
    assert verdict.skipped == "history 16 < 21 points: too new to judge"
    with sessions() as session:
        last = session.scalars(select(Run).order_by(Run.id.desc())).first()
    assert "volume:breakouts (history 16 < 21 points: too new to judge)" in last.log


def test_a_running_worker_picks_up_a_late_file_for_a_missing_partition(settings, sessions):
    steps.write_config(settings)
    for n in range(3):
        if n != 1:
            steps.deliver(settings.home, day(n), steps.rows_on(n, None))
    steps.run(sessions, settings, day(0), day(2), now=steps.live_morning(day(2)))
    [missing] = monitor_alerts(sessions, "freshness:missing")
    assert missing["partition"] == day(1).isoformat() and missing["status"] == "open"

    steps.deliver(settings.home, day(1), steps.rows_on(1, None),
                  arrived=dt.datetime.now(dt.UTC))
    worker = Worker(sessions, settings, schedules=False, poll_interval=0.2)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sessions() as session:
                if session.get(Alert, missing["id"]).status == "resolved":
                    break
            time.sleep(0.1)
    finally:
        worker.stop(timeout=30)
    [after] = monitor_alerts(sessions, "freshness:missing")
    assert after["status"] == "resolved" and after["resolution"] == "auto"
    with sessions() as session:
        assert session.scalar(select(Batch.status).where(Batch.partition == day(1))) == "ingested"
    # asked once per delivery: nothing more to request
    assert worker.notice_late_deliveries() == []


def test_a_dataset_declared_without_a_contract_infers_it_from_its_first_batch(settings, sessions):
    steps.write_config(settings, contract=False)
    for n in range(3):
        steps.deliver(settings.home, day(n), steps.rows_on(n, None))
    run = steps.run(sessions, settings, day(0), day(2), now=steps.live_morning(day(2)))
    assert run.status == "succeeded"
    with sessions() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == steps.NAME))
        batches = session.scalars(select(Batch.status).where(Batch.dataset_id == dataset.id)).all()
    assert [c["name"] for c in dataset.contract["columns"]] == ["id", "amount", "channel"]
    assert dataset.contract["inferred"] is True
    assert batches == ["ingested"] * 3


def test_a_sql_dataset_declared_without_a_contract_reads_it_from_its_table(settings, sessions,
                                                                          tmp_path):
    source = f"sqlite:///{tmp_path / 'warehouse.db'}"
    engine = sa.create_engine(source)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE payments (paid_on DATE, id INTEGER, "
                                   "amount FLOAT, country VARCHAR(2))"))
        connection.execute(sa.text(
            "INSERT INTO payments VALUES ('2026-03-01', 1, 9.5, 'FR'), ('2026-03-01', 2, 3.0, 'DE')"))
    engine.dispose()
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(yaml.safe_dump({"datasets": [{
        "name": steps.NAME, "format": "sql", "source": source, "table": "payments",
        "partition_key": "paid_on"}]}))
    steps.run(sessions, settings, day(0), day(0), now=steps.live_morning(day(0)))
    with sessions() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == steps.NAME))
        batch = session.scalar(select(Batch).where(Batch.dataset_id == dataset.id))
    assert [(c["name"], c["type"]) for c in dataset.contract["columns"]] == [
        ("id", "integer"), ("amount", "float"), ("country", "string")]
    assert (batch.status, batch.rows) == ("ingested", 2)
