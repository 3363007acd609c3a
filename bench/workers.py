"""Several workers on one PostgreSQL store: throughput against the number of worker processes.

A throwaway PostgreSQL server (bench/pushdown.py's) holds one database per measurement. In
each, --datasets file datasets of --columns columns (bench/scale.py's generator and config)
have --days daily files delivered, and one run is requested per dataset and day (single-
partition runs, oldest day first, so the queue holds many small pieces of work as a daily
catch-up does). Then N real `python -m monitors worker --once --no-schedules --parallel 1`
processes are started together and drain that queue; the time from their start to the last
one's exit is the figure: runs/s for each N in --workers, measured alternately (--repeat
rounds, the order reversed every other round), with the load average around each one and
the CPU the workers used (wait4), whose ratio to the wall time says how many cores they kept busy.

Checked for every measurement: every run succeeded; each run was claimed by exactly one
worker and never released or retried (its log and `claimed_by`); every (dataset, partition)
has exactly one batch and one set of profile metrics (a partition run twice would be landed
and profiled twice, or superseded); with N > 1, every worker claimed some runs.

    python bench/workers.py                                   # N = 1 and 2, 8 datasets x 10 days
    python bench/workers.py --workers 1,2,3 --repeat 3

Figures: bench/results/workers.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
RESULTS = BENCH / "results" / "workers.json"


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scale = _bench_module("scale")
pushdown = _bench_module("pushdown")


def _fresh_database(server: str, name: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
        connection.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


def prepare(url: str, home: Path, args, files: list[Path]) -> tuple[list[int], list[str]]:
    """The store, the config and the landing folders; one queued run per dataset and day."""
    from monitors.catalog import sync_datasets
    from monitors.config import save_config
    from monitors.intake.ingest import partition_from_name
    from monitors.pipeline import queue
    from monitors.settings import load_settings
    from store import queries
    from store.engine import open_store

    settings = load_settings({"MONITORS_HOME": str(home), "MONITORS_DB_URL": url})
    config = scale._config(args.datasets, 1, scale.column_plan(args.columns))
    save_config(config, settings.config_path)
    engine, sessions = open_store(url)
    names = [d.name for d in config.datasets]
    for name in names:
        scale._deliver(home, name, files)
    with sessions.begin() as session:
        sync_datasets(session, config, home)
    days = [partition_from_name(path) for path in files]
    ids = []
    with sessions.begin() as session:
        for day in days:  # the oldest day of every dataset first, as a catch-up queues them
            for name in names:
                ids.append(queue.request_run(session, queries.get_dataset(session, name), day, day,
                                             trigger="backfill", by="bench",
                                             today=days[-1] + dt.timedelta(days=1)).id)
    engine.dispose()
    return ids, names


def drain(url: str, home: Path, workers: int) -> dict:
    """N worker processes started together; wall time to the last exit, their CPU (wait4)."""
    environ = {**os.environ, "MONITORS_HOME": str(home), "MONITORS_DB_URL": url}
    command = [sys.executable, "-m", "monitors", "worker", "--once", "--no-schedules",
               "--parallel", "1", "--lease-seconds", "600", "--poll-seconds", "0.5"]
    load_before = os.getloadavg()
    started = time.perf_counter()
    processes = {subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL).pid for _ in range(workers)}
    cpu, failed = 0.0, []
    while processes:
        pid, status, usage = os.wait4(-1, 0)
        if pid in processes:
            processes.discard(pid)
            cpu += usage.ru_utime + usage.ru_stime
            if os.waitstatus_to_exitcode(status):
                failed.append(os.waitstatus_to_exitcode(status))
    seconds = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"worker exit codes {failed}")
    return {"seconds": seconds, "worker_cpu_seconds": cpu, "cores_busy": cpu / seconds,
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def check(url: str, ids: list[int], workers: int) -> dict:
    """Every run once, by one worker; every partition landed and profiled once."""
    import sqlalchemy as sa

    from store.models import Batch, Metric, Run

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        runs = connection.execute(sa.select(Run.id, Run.status, Run.claimed_by, Run.log)).all()
        batches = Counter(connection.execute(sa.select(Batch.dataset_id, Batch.partition)).all())
        statuses = Counter(connection.execute(sa.select(Batch.status)).scalars())
        # one profile per batch: the row counts stored, one per batch
        profiles = Counter(connection.execute(
            sa.select(Metric.batch_id).where(Metric.metric == "row_count", Metric.column.is_(None))).scalars())
    engine.dispose()
    # a worker id is host:pid:nonce
    claimers = Counter(r.claimed_by for r in runs)
    problems = []
    if sorted(r.id for r in runs) != sorted(ids):
        problems.append(f"{len(runs)} runs in the store for {len(ids)} requested (retried or requeued)")
    if any(r.status != "succeeded" for r in runs):
        problems.append(f"statuses {Counter(r.status for r in runs)}")
    if any(r.claimed_by is None for r in runs) or any("released" in (r.log or "") or "lost" in (r.log or "")
                                                      for r in runs):
        problems.append("a run was released, lost or never claimed")
    if any(count != 1 for count in batches.values()) or len(batches) != len(ids):
        problems.append(f"batches per partition {Counter(batches.values())} for {len(ids)} runs")
    if set(statuses) != {"ingested"}:
        problems.append(f"batch statuses {dict(statuses)}")
    if any(count != 1 for count in profiles.values()) or len(profiles) != len(ids):
        problems.append(f"profiles per batch {Counter(profiles.values())}")
    if workers > 1 and len(claimers) < workers:
        problems.append(f"only {len(claimers)} of {workers} workers claimed runs")
    return {"runs": len(runs), "partitions_landed_once": len(batches),
            "runs_per_worker": sorted(claimers.values(), reverse=True),
            "each_partition_once": not problems, "problems": problems}


def main() -> None:
    # a terminated benchmark still stops its PostgreSQL server (the context manager's exit)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="worker process counts to compare")
    parser.add_argument("--datasets", type=int, default=8)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    end = dt.date(2026, 6, 30)
    files = scale.template_files(1, args.days, end, scale.column_plan(args.columns), args.rows)[0]
    found: dict[int, list[dict]] = {n: [] for n in counts}
    with pushdown.postgres() as server:
        for repeat in range(args.repeat):
            # alternating, so that a neighbour's burst of work does not land on one N only
            for n in (counts if repeat % 2 == 0 else counts[::-1]):
                url = _fresh_database(server, f"workers_{n}_{repeat}")
                home = Path(tempfile.mkdtemp(prefix=f"workers-{n}-", dir=scale.DATA))
                try:
                    ids, _ = prepare(url, home, args, files)
                    measured = drain(url, home, n) | check(url, ids, n)
                finally:
                    shutil.rmtree(home, ignore_errors=True)
                measured["runs_per_second"] = measured["runs"] / measured["seconds"]
                found[n].append(measured)
                print(f"workers {n}: {measured['runs']} runs in {measured['seconds']:.1f} s = "
                      f"{measured['runs_per_second']:.2f} runs/s; workers' CPU {measured['worker_cpu_seconds']:.1f} s "
                      f"({measured['cores_busy']:.2f} cores busy); load {measured['load_before']} -> "
                      f"{measured['load_after']}; runs per worker {measured['runs_per_worker']}; "
                      f"each partition once: {measured['each_partition_once']} {measured['problems'] or ''}",
                      flush=True)
    median = {n: {k: round(statistics.median(m[k] for m in runs), 3)
                  for k in ("seconds", "runs_per_second", "worker_cpu_seconds", "cores_busy")}
              for n, runs in found.items()}
    base = median[counts[0]]["runs_per_second"]
    result = {"benchmark": "bench/workers.py",
              "work": f"{args.datasets} file datasets x {args.days} days, {args.columns} columns, about "
                      f"{args.rows} rows a batch, default monitors; one single-partition run per dataset "
                      f"and day ({args.datasets * args.days} runs)",
              "store": "PostgreSQL (a throwaway server, fsync off), a fresh database per measurement",
              "worker": "`python -m monitors worker --once --no-schedules --parallel 1`, N started together",
              "repeat": args.repeat, "median": median,
              "speedup_vs_first": {n: round(m["runs_per_second"] / base, 2) for n, m in median.items()},
              "each_partition_once": all(m["each_partition_once"] for runs in found.values() for m in runs),
              "all": {n: [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items()}
                          for m in runs] for n, runs in found.items()},
              "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "note": "2 cores shared with other processes (see the load averages)"}}
    rates = ", ".join(f"N={n}: {m['runs_per_second']}" for n, m in median.items())
    print(f"workers: runs/s {rates}; "
          f"x{result['speedup_vs_first']}; each partition once: {result['each_partition_once']}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
