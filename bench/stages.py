"""What held stages cost a worker: one stage-loop pass over N held partitions.

A held stage is looked at again by the worker (monitors.pipeline.stages.run_due_stages) with a gate
evaluation per partition; this measures a pass over N partitions of a dataset whose
upstream has a critical alert on each, with and without the held ones (the worker looks at
held ones every `held_stages_every` seconds, 10 by default, and at queued ones every poll).

    python bench/stages.py                  # N = 100 and 500, on SQLite in a temporary home
    python bench/stages.py --sizes 50 1000

Prints the figures and writes bench/results/stages.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pandas as pd

from detectors.result import Finding
from monitors.config import parse_config
from monitors.lifecycle.alerts import Signal, record_signals
from monitors.pipeline.stages import plan_stages, run_due_stages
from monitors.settings import load_settings
from store.engine import open_store
from store.models import Batch, BatchStatus, Dataset, utcnow

CONFIG = """datasets:
  - {{name: customers, format: csv, source: c}}
  - name: scores
    format: csv
    source: s
    upstream: [customers]
    stages:
      - {{name: score, run: "{python} -c pass"}}
      - {{name: deliver, run: "{python} -c pass"}}
"""


def measure(size: int, repeats: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    settings = load_settings({"MONITORS_HOME": str(home)})
    engine, sessions = open_store(settings.db_url)
    config = parse_config(CONFIG.format(python=sys.executable))
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(size)]
    now = utcnow()
    with sessions.begin() as session:
        customers = Dataset(name="customers", format="csv")
        scores = Dataset(name="scores", format="csv", upstream=["customers"])
        session.add_all([customers, scores])
        session.flush()
        for dataset in (customers, scores):
            session.add_all(Batch(dataset_id=dataset.id, partition=d, status=BatchStatus.ingested,
                                  rows=1, columns=1, source="bench", fingerprint=f"{dataset.id}-{d}",
                                  arrived_at=now) for d in days)
        record_signals(session, [
            Signal(dataset_id=customers.id, monitor=f"volume:{i}", detector="seasonal",
                   column=None, severity="critical", partition=d, point=True,
                   finding=Finding(at=pd.Timestamp(d), value=1.0, expected=2.0, lower=1.5,
                                   upper=2.5, score=5.0, detail="bench"))
            for i, d in enumerate(days)], now=now, config_version="bench")
        scores_id = scores.id
    started = time.perf_counter()
    with sessions.begin() as session:
        plan_stages(session, config, scores_id, days, now=now)
    planned = time.perf_counter() - started

    def timed(held: bool) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            ran = run_due_stages(sessions, settings, worker_id="bench", held=held)
            times.append(time.perf_counter() - started)
            assert ran == []  # all held: nothing may run
        return statistics.median(times)

    result = {"held_partitions": size, "plan_s": round(planned, 3),
              "pass_with_held_s": round(timed(True), 4),
              "pass_without_held_s": round(timed(False), 4)}
    result["per_held_partition_ms"] = round(1000 * result["pass_with_held_s"] / size, 2)
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = [measure(size, args.repeats) for size in args.sizes]
    for r in results:
        print(f"{r['held_partitions']:>5} held partitions: plan {r['plan_s']} s; a pass "
              f"{r['pass_with_held_s']} s with them ({r['per_held_partition_ms']} ms each), "
              f"{r['pass_without_held_s']} s without")
    out = ROOT / "bench" / "results" / "stages.json"
    out.write_text(json.dumps({"store": "sqlite", "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
