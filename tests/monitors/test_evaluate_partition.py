"""Evaluating a partition is one call in monitors.judge.evaluate, shared by runs and backtests;
the contract is parsed once per run, whatever the number of partitions."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

import monitors.judge.evaluate as evaluate
from monitors.contract import Contract
from monitors.demo import land_demo
from monitors.pipeline.run import execute_run
from store.models import Dataset, Run

ROOT = Path(__file__).resolve().parents[2]
END = dt.date(2026, 6, 30)


def test_a_backtest_does_not_load_the_pipeline_orchestrator():
    # in a fresh interpreter: this test session has imported monitors.pipeline.run already
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, monitors.judge.backtest; "
                               "print('monitors.pipeline.run' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"


def test_run_and_backtest_call_the_same_partition_evaluation():
    import monitors.judge.backtest as backtest
    import monitors.pipeline.run as run

    assert run.evaluate_partition is backtest.evaluate_partition is evaluate.evaluate_partition
    assert not hasattr(run, "_batch_state_verdict") and not hasattr(run, "state_finding")


def test_a_run_over_many_partitions_parses_the_contract_once(sessions, settings, monkeypatch):
    land_demo(sessions, settings, days=6, seed=3, end=END)
    parses = []
    original = Contract.model_validate.__func__

    def counted(cls, *args, **kwargs):
        parses.append(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Contract, "model_validate", classmethod(counted))
    with sessions.begin() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == "customer_snapshot"))
        queued = Run(dataset_id=dataset.id, trigger="backfill", requested_by="test",
                     partition_from=END - dt.timedelta(days=5), partition_to=END)
        session.add(queued)
        session.flush()
        run_id = queued.id
    execute_run(sessions, settings, run_id, notify=False,
                now=dt.datetime.combine(END, dt.time(), dt.UTC) + dt.timedelta(days=2))
    with sessions() as session:
        done = session.get(Run, run_id)
        assert (done.status, done.progress_done) == ("succeeded", 6), done.error
    assert len(parses) == 1
