"""Scale benchmark (the "does it hold at a year x 200 datasets" issue): three figures.

1. cycle: a year of daily batches for --datasets file datasets of --columns columns, on each
   store of --stores (a SQLite file; a throwaway PostgreSQL server started and stopped here).
   Measured through the real worker (monitors.pipeline.worker.Worker(max_parallel=2).drain()):
   - the DAILY CYCLE: the day's file is delivered into every dataset's landing folder, one
     run per dataset is requested for that partition, and the worker drains the queue
     (ingestion + profiling + every automatic monitor over the year of history + alerts);
   - a FULL BACKFILL: one backfill run per dataset over the --days partitions, landing every
     file and evaluating every partition. Measured on --backfill-datasets of the datasets
     (all of them when it equals --datasets) and extrapolated per dataset to the rest.
   The history the daily cycle reads for the other datasets is bulk-loaded: each file is
   profiled by the ingestion's own reader and profiler, and its batch and metric rows are
   written as ingest_file writes them, without a run per day (a year of runs for 200
   datasets is what the backfill figure is about; it is too slow to repeat as set-up).
   Files come from --templates seeded generators (one per template and day) and are
   hard-linked into each dataset's landing folder: datasets sharing a template see the same
   bytes, which costs the pipeline exactly what distinct bytes would.
2. pushdown: bench/pushdown.py's comparison at --pushdown-rows (5M) rows, both paths in
   this run, alternating, the median of --repeat kept.
3. csv: a ~--csv-gb GB CSV (bench/profile.py's 20-column generator, streamed out in 1M-row
   blocks) landed by monitors.intake.ingest.ingest_file into a fresh SQLite store in a child
   process: fingerprint, streaming read, BatchProfiler, metric rows; the child's wall time
   and peak RSS (wait4's ru_maxrss).

    python bench/scale.py                                       # everything, the issue's sizes
    python bench/scale.py --parts cycle --datasets 20 --days 60 --stores sqlite
    python bench/scale.py --parts pushdown,csv
    python bench/scale.py --parts backfill --backfill-days 365 --repeat 3   # vs --baseline 2ae2fd0
4. backfill: one dataset of --columns columns, --backfill-days partitions, one run in a child
   process by this code and by the code at --baseline (git archive under /tmp), alternating;
   partitions per wall and per CPU second, and their ratios.
Generated files are cached under bench/data/ (git ignores it). Figures: bench/results/scale.json
(a subset run replaces its own parts and keeps the others).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib.util
import json
import os
import platform
import shutil
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

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

DATA = BENCH / "data"
RESULTS = BENCH / "results" / "scale.json"
# bump when the generator changes, so stale files are not reused
GENERATOR_VERSION = 1
ARRIVAL_HOURS = 2.0  # after the partition's day ends; the deadline is 6 hours
WEEKLY = np.array([1.0, 1.02, 1.03, 1.01, 0.98, 0.8, 0.72])
WORDS = np.array([f"v{n:03d}" for n in range(200)])


def _bench_module(name: str):
    """A sibling benchmark as a module (bench/ is not a package; `profile` would also
    shadow the standard library's module of that name)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- 1. the daily cycle and the backfill ------------------------------------------------


def column_plan(columns: int) -> list[dict]:
    """The columns of every dataset: an id, then numeric, string, boolean and temporal
    columns in proportions a wide feature table has; one column in six may be null."""
    kinds = ["float", "integer", "string", "float", "integer", "string", "float", "boolean",
             "string", "float"]
    plan = [{"name": "id", "type": "integer", "nullable": False, "sensitive": True}]
    for n in range(1, columns):
        kind = "date" if n == columns - 1 and columns > 10 else kinds[n % len(kinds)]
        plan.append({"name": f"{kind[:3]}_{n:02d}", "type": kind, "nullable": n % 6 == 0})
    return plan


def _template_table(template: int, day_index: int, day: dt.date, plan: list[dict], rows: int) -> pa.Table:
    rng = np.random.default_rng([GENERATOR_VERSION, template, day_index])
    # growth, a weekly season and noise: what the volume monitors are built for
    count = int(rows * (1 + 0.0005 * day_index) * WEEKLY[day.weekday()] * rng.normal(1, 0.02))
    arrays = {}
    for n, spec in enumerate(plan):
        # each column has its own stable shape (from the template and its position)
        shape = np.random.default_rng([template, n])
        if spec["name"] == "id":
            values = np.arange(day_index * 10 * rows, day_index * 10 * rows + count, dtype=np.int64)
        elif spec["type"] == "float":
            values = rng.normal(shape.uniform(-100, 100), shape.uniform(1, 20), count).round(3)
        elif spec["type"] == "integer":
            values = rng.poisson(shape.uniform(1, 50), count).astype(np.int64)
        elif spec["type"] == "string":
            cardinality = int(shape.integers(3, 40))
            weights = shape.dirichlet(np.ones(cardinality))
            values = WORDS[rng.choice(cardinality, count, p=weights)]
        elif spec["type"] == "boolean":
            values = rng.random(count) < shape.uniform(0.1, 0.9)
        else:
            values = np.full(count, day, dtype="datetime64[D]")
        mask = rng.random(count) < 0.05 if spec["nullable"] else None
        arrays[spec["name"]] = pa.array(values, mask=mask)
    return pa.table(arrays)


def template_files(templates: int, days: int, end: dt.date, plan: list[dict], rows: int) -> dict[int, list[Path]]:
    """For each template, its files for days [end - days + 1, end] (generated when missing):
    even templates deliver Parquet, odd ones CSV, each stamped with its arrival time."""
    root = DATA / f"scale_v{GENERATOR_VERSION}_c{len(plan)}_r{rows}"
    start = end - dt.timedelta(days=days - 1)
    found: dict[int, list[Path]] = {}
    started, written = time.perf_counter(), 0
    now = time.time()
    for template in range(templates):
        fmt = "parquet" if template % 2 == 0 else "csv"
        folder = root / f"t{template:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for index in range(days):
            day = start + dt.timedelta(days=index)
            path = folder / f"t{template:02d}_{day.isoformat()}.{fmt}"
            if not path.exists():
                table = _template_table(template, (day - dt.date(2020, 1, 1)).days, day, plan, rows)
                partial = path.with_name(path.name + ".partial")
                if fmt == "csv":
                    pacsv.write_csv(table, partial)
                else:
                    pq.write_table(table, partial)
                partial.replace(path)
                written += 1
            day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC)
            stamp = min((day_end + dt.timedelta(hours=ARRIVAL_HOURS)).timestamp(), now)
            os.utime(path, (stamp, stamp))
            paths.append(path)
        found[template] = paths
    if written:
        print(f"generated {written} files in {time.perf_counter() - started:.1f} s under "
              f"{root.relative_to(ROOT)}", flush=True)
    return found


def _config(datasets: int, templates: int, plan: list[dict]):
    from monitors.config import DatasetConfig, MonitorsConfig
    from monitors.contract import Contract

    contract = Contract.model_validate({"columns": plan})
    return MonitorsConfig(datasets=[
        DatasetConfig(name=f"ds{i:03d}", kind="data",
                      format="parquet" if (i % templates) % 2 == 0 else "csv",
                      source=f"landing/ds{i:03d}", partition_key="day", contract=contract)
        for i in range(datasets)])


def _deliver(home: Path, dataset: str, files: list[Path]) -> None:
    """Hard links in the dataset's landing folder, named as the upstream names its files."""
    folder = home / "landing" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for source in files:
        target = folder / f"{dataset}_{source.name.split('_', 1)[1]}"
        if not target.exists():
            os.link(source, target)


def _profile_file(path: Path, contract) -> list:
    from monitors.intake.profile import BatchProfiler
    from monitors.intake.readers import detect_format, read_file

    profiler = BatchProfiler(contract.arrow_schema(), categorical=contract.categorical())
    for chunk in read_file(path, detect_format(path), contract):
        profiler.update(chunk)
    return profiler.metrics()


_profiled: dict = {}


def bulk_history(engine, home: Path, dataset_rows: list[tuple[int, str, int]], files: dict[int, list[Path]],
                 contract) -> dict:
    """Batch and metric rows for every (dataset, day), as ingest_file would store them: each
    template's file profiled once by the ingestion's reader and profiler, its rows written
    for every dataset that uses the template."""
    from monitors.contract import schema_fingerprint
    from monitors.intake.freshness import arrival_delay_hours
    from monitors.intake.ingest import arrival_time, partition_from_name
    from store.models import Batch

    started = time.perf_counter()
    columns = len(contract.columns)
    shape = schema_fingerprint(contract.arrow_schema())
    profiled = _profiled  # the same files for every store: profiled once per process
    for template, paths in files.items():
        for path in paths:
            if (template, partition_from_name(path)) in profiled:
                continue
            partition = partition_from_name(path)
            arrived_at = arrival_time(path)
            metrics = [(m.column, m.metric, m.key, m.value) for m in _profile_file(path, contract)]
            metrics.append((None, "arrival_delay_hours", "", arrival_delay_hours(partition, arrived_at)))
            rows = next(int(v) for c, m, _, v in metrics if c is None and m == "row_count")
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            profiled[template, partition] = (metrics, rows, digest, arrived_at)
    profiling = time.perf_counter() - started
    postgres = engine.dialect.name == "postgresql"
    metric_count = 0
    ingested_at = dt.datetime.now(dt.UTC)
    batches = Batch.__table__
    metric_names = ["dataset_id", "batch_id", "partition", "column", "metric", "key", "value"]
    for dataset_id, name, template in dataset_rows:
        with engine.begin() as connection:
            values = [{"dataset_id": dataset_id, "partition": partition, "status": "ingested",
                       "rows": rows, "columns": columns, "reason": None,
                       "source": str(_landed(home, name, path)),
                       "fingerprint": digest, "schema_fingerprint": shape,
                       "arrived_at": arrived_at, "ingested_at": ingested_at}
                      for path in files[template]
                      for partition in [partition_from_name(path)]
                      for _, rows, digest, arrived_at in [profiled[template, partition]]]
            ids = connection.execute(batches.insert().returning(batches.c.id, batches.c.partition),
                                     values).all()
            rows_out = [(dataset_id, batch_id, partition, c, m, k, v)
                        for batch_id, partition in ids
                        for c, m, k, v in profiled[template, partition][0]]
            metric_count += len(rows_out)
            if postgres:
                cursor = connection.connection.driver_connection.cursor()
                quoted = ", ".join(f'"{n}"' for n in metric_names)
                with cursor.copy(f"COPY metrics ({quoted}) FROM STDIN") as copy:
                    for row in rows_out:
                        copy.write_row(row)
            else:
                connection.exec_driver_sql(
                    f"INSERT INTO metrics ({', '.join(metric_names)}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(d, b, p.isoformat(), c, m, k, v) for d, b, p, c, m, k, v in rows_out])
    if postgres:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE metrics")
            connection.exec_driver_sql("VACUUM ANALYZE batches")
    return {"datasets": len(dataset_rows), "metric_rows": metric_count,
            "profiling_seconds": round(profiling, 1),
            "seconds": round(time.perf_counter() - started, 1)}


def _landed(home: Path, dataset: str, template_path: Path) -> Path:
    return home / "landing" / dataset / f"{dataset}_{template_path.name.split('_', 1)[1]}"


def _drain(sessions, settings, run_ids: list[int], workers: int) -> dict:
    """The queue worked off as a 2-core deployment would: `workers` worker processes
    (`python -m monitors worker --once`), one run at a time each, since runs are mostly
    Python and one process's threads share one core; then what the runs recorded."""
    from store.models import Alert, Run

    environ = {**os.environ, "MONITORS_HOME": str(settings.home), "MONITORS_DB_URL": settings.db_url}
    command = [sys.executable, "-m", "monitors", "worker", "--once", "--no-schedules",
               "--parallel", "1", "--lease-seconds", "600", "--poll-seconds", "0.5"]
    started = time.perf_counter()
    processes = [subprocess.Popen(command, cwd=ROOT, env=environ, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(workers)]
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            raise RuntimeError(f"worker exited {process.returncode}: {err[-2000:]}")
    seconds = time.perf_counter() - started
    stages: Counter = Counter()
    statuses: Counter = Counter()
    with sessions() as session:
        for run in session.query(Run).filter(Run.id.in_(run_ids)):
            statuses[run.status] += 1
            stages.update(run.stages or {})
            # what a run spends outside its named stages: loading the config, syncing datasets
            if run.finished_at and run.started_at:
                stages["run_wall"] += (run.finished_at - run.started_at).total_seconds()
            if run.status != "succeeded":
                print(f"  run {run.id} {run.status}: {run.error}", flush=True)
        alerts = session.query(Alert).count()
    stages["outside_stages"] = stages["run_wall"] - sum(v for k, v in stages.items() if k != "run_wall")
    return {"seconds": round(seconds, 1), "runs": len(run_ids), "statuses": dict(statuses),
            "stage_seconds_summed_over_runs": {k: round(v, 1) for k, v in sorted(stages.items())},
            "alerts_in_store": alerts}


def _request(sessions, names: list[str], first: dt.date, last: dt.date, trigger: str) -> list[int]:
    from monitors.pipeline import queue
    from store import queries

    with sessions.begin() as session:
        return [queue.request_run(session, queries.get_dataset(session, name), first, last,
                                  trigger=trigger, by="bench", today=last + dt.timedelta(days=1)).id
                for name in names]


def _store_size(url: str, home: Path) -> float:
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        return sum(p.stat().st_size for p in home.glob("monitors.db*")) / 2**20
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        size = connection.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
    engine.dispose()
    return size / 2**20


def cycle_on_store(store: str, url: str | None, args, files: dict[int, list[Path]], plan: list[dict],
                   end: dt.date) -> dict:
    from monitors.catalog import sync_datasets
    from monitors.config import save_config
    from monitors.settings import load_settings
    from store.engine import open_store

    home = Path(tempfile.mkdtemp(prefix=f"scale-{store}-", dir=DATA))
    environ = {"MONITORS_HOME": str(home)}
    if url:
        environ["MONITORS_DB_URL"] = url
    settings = load_settings(environ)
    config = _config(max(args.datasets, args.declared), args.templates, plan)
    save_config(config, settings.config_path)
    engine, sessions = open_store(settings.db_url)
    # the measured datasets; the others are declared only (their config is parsed and synced)
    names = [d.name for d in config.datasets][:args.datasets]
    template_of = {name: i % args.templates for i, name in enumerate(names)}
    history_days = {t: paths[:-1] for t, paths in files.items()}
    today = {t: paths[-1:] for t, paths in files.items()}
    first, last = end - dt.timedelta(days=args.days), end - dt.timedelta(days=1)
    result: dict = {"store": store, "datasets": args.datasets, "declared_in_config": len(config.datasets)}
    try:
        for name in names:
            _deliver(home, name, history_days[template_of[name]])
        with sessions.begin() as session:
            ids = {d.name: d.id for d in sync_datasets(session, config, home)}
        backfilled = names[:args.backfill_datasets]
        bulk = [(ids[n], n, template_of[n]) for n in names[args.backfill_datasets:]]
        if bulk:
            print(f"[{store}] bulk-loading {args.days} days of history for {len(bulk)} datasets", flush=True)
            result["history_bulk_load"] = bulk_history(engine, home, bulk, history_days,
                                                       config.datasets[0].contract)
            print(f"[{store}]   {result['history_bulk_load']}", flush=True)
        if backfilled:
            print(f"[{store}] backfill: {len(backfilled)} datasets x {args.days} partitions", flush=True)
            run_ids = _request(sessions, backfilled, first, last, "backfill")
            measured = _drain(sessions, settings, run_ids, args.workers)
            per_dataset = measured["seconds"] / len(backfilled)
            measured |= {"datasets_measured": len(backfilled), "partitions": args.days,
                         "seconds_per_dataset": round(per_dataset, 1),
                         "full_backfill_seconds": round(per_dataset * len(config.datasets), 1),
                         "full_backfill_is": "measured" if len(backfilled) == len(config.datasets) else
                         f"extrapolated: {len(backfilled)} datasets measured, "
                         f"x {len(config.datasets) / len(backfilled):g}"}
            result["backfill"] = measured
            print(f"[{store}]   {measured}", flush=True)
        print(f"[{store}] daily cycle: {args.datasets} datasets, partition {end}", flush=True)
        started = time.perf_counter()
        for name in names:
            _deliver(home, name, today[template_of[name]])
        delivered = time.perf_counter() - started
        run_ids = _request(sessions, names, end, end, "schedule")
        measured = _drain(sessions, settings, run_ids, args.workers)
        measured |= {"delivery_seconds": round(delivered, 2),
                     "seconds": round(time.perf_counter() - started, 1),
                     "target_seconds": 300}
        if len(config.datasets) > len(names):
            # runs are independent per dataset: the cycle of every declared dataset, pro rata
            measured["extrapolated_to_declared_seconds"] = round(
                measured["seconds"] * len(config.datasets) / len(names), 1)
        result["daily_cycle"] = measured
        print(f"[{store}]   {measured}", flush=True)
        result["store_mib"] = round(_store_size(settings.db_url, home), 1)
        with engine.connect() as connection:
            result["metric_rows"] = connection.exec_driver_sql("SELECT count(*) FROM metrics").scalar()
            result["batches"] = connection.exec_driver_sql("SELECT count(*) FROM batches").scalar()
    finally:
        engine.dispose()
        if not args.keep_stores:
            shutil.rmtree(home, ignore_errors=True)
    return result


def run_cycle(args) -> dict:
    plan = column_plan(args.columns)
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    # the span's last day is the cycle's; the days before it are the history
    files = template_files(args.templates, args.days + 1, end, plan, args.rows)
    kinds = Counter(c["type"] for c in plan)
    part = {"datasets": args.datasets, "columns": args.columns, "column_types": dict(kinds),
            "nullable_columns": sum(c["nullable"] for c in plan),
            "rows_per_batch": f"about {args.rows} (weekly season x0.72..x1.03, growth, 2% noise)",
            "days_of_history": args.days, "templates": args.templates,
            "formats": "even templates Parquet, odd ones CSV; dataset i uses template i % templates",
            "worker": f"{args.workers} x `python -m monitors worker --once --parallel 1`",
            "stores": {}}
    pushdown = _bench_module("pushdown")
    for store in args.stores.split(","):
        if store == "postgresql":
            with pushdown.postgres() as server:
                part["stores"][store] = cycle_on_store(store, server, args, files, plan, end)
        else:
            part["stores"][store] = cycle_on_store(store, None, args, files, plan, end)
    return part


# ---- 2. pushdown at 5M rows -------------------------------------------------------------


def run_pushdown(args) -> dict:
    import resource

    import sqlalchemy as sa

    pushdown = _bench_module("pushdown")
    with pushdown.postgres() as url:
        engine = sa.create_engine(url)
        started = time.perf_counter()
        pushdown.build(engine, args.pushdown_rows)
        built = time.perf_counter() - started
        print(f"pushdown: built {args.pushdown_rows:,} rows in {built:.1f} s", flush=True)
        times: dict[str, list[float]] = {"pushdown": [], "pulling": []}
        profiles = {}
        for _ in range(args.repeat):
            # alternating, so that a neighbour's burst of work does not land on one side only
            for name, run in (("pushdown", lambda: pushdown.pushdown(engine)),
                              ("pulling", lambda: pushdown.pulling(url))):
                started = time.perf_counter()
                profiles[name] = run()
                times[name].append(round(time.perf_counter() - started, 2))
                print(f"pushdown: {name} {times[name][-1]:.2f} s", flush=True)
        engine.dispose()
    median = {name: statistics.median(found) for name, found in times.items()}
    return {"rows": args.pushdown_rows, "table": "bench/pushdown.py's orders table (6 profiled columns)",
            "pushdown": "monitors.intake.pushdown.profile_sql_partition", "pulling": "bench/pushdown.py read_sql "
            "(server-side cursor, 100k-row chunks) into BatchProfiler",
            "seconds": median, "all_seconds": times, "repeat": args.repeat,
            "speedup": round(median["pulling"] / median["pushdown"], 2),
            "client_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "largest_relative_differences": pushdown.largest_differences(profiles["pushdown"],
                                                                          profiles["pulling"])}


# ---- 3. a 5 GB CSV ------------------------------------------------------------------------


def big_csv(gigabytes: float) -> tuple[Path, int]:
    """A CSV of at least `gigabytes` GB from bench/profile.py's seeded 1M-row blocks."""
    profile = _bench_module("profile")
    target = int(gigabytes * 1e9)
    path = DATA / f"scale_csv_{gigabytes:g}gb_v{GENERATOR_VERSION}.csv"
    rows_file = path.with_suffix(".rows")
    if path.exists() and rows_file.exists():
        return path, int(rows_file.read_text())
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    rows, index = 0, 0
    # an upper bound on the row count, for the generator's high-cardinality columns
    estimate = target // 150
    with pacsv.CSVWriter(partial, profile.SCHEMA) as writer:
        while partial.stat().st_size < target:
            writer.write_table(pa.Table.from_batches([profile._block(index, profile.BLOCK, estimate)]))
            rows += profile.BLOCK
            index += 1
    partial.replace(path)
    rows_file.write_text(str(rows))
    print(f"csv: generated {rows:,} rows, {path.stat().st_size / 1e9:.2f} GB in "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    return path, rows


def _csv_child(path: str) -> None:
    """In the child: land the file as `ingest --dataset big PATH` would, into a fresh store."""
    import pyarrow as pa

    from monitors.contract import ColumnSpec, Contract, logical_type
    from monitors.intake.ingest import ingest_file
    from store.engine import open_store
    from store.models import Dataset

    profile = _bench_module("profile")
    contract = Contract(columns=[
        ColumnSpec(name=f.name, type=logical_type(f.type), categorical=f.name in profile.CATEGORICAL)
        for f in profile.SCHEMA])
    home = Path(tempfile.mkdtemp(prefix="scale-csv-", dir=DATA))
    try:
        engine, sessions = open_store(f"sqlite:///{home / 'monitors.db'}")
        started, cpu = time.perf_counter(), time.process_time()
        with sessions.begin() as session:
            dataset = Dataset(name="big", kind="data", source=str(Path(path).parent), format="csv",
                              contract=contract.to_json())
            session.add(dataset)
            session.flush()
            outcome = ingest_file(session, dataset, Path(path), dt.date(2026, 1, 1))
        print(json.dumps({"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
                          "status": outcome.status, "rows": outcome.rows, "reason": outcome.reason,
                          "arrow_peak_mib": pa.default_memory_pool().max_memory() / 2**20}))
        engine.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_csv(args) -> dict:
    path, rows = big_csv(args.csv_gb)
    child = subprocess.Popen([sys.executable, __file__, "--csv-child", str(path)], stdout=subprocess.PIPE)
    out = child.stdout.read()
    # wait4: this child's own peak, whatever else this process started before
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the CSV child failed with {os.waitstatus_to_exitcode(status)}")
    found = json.loads(out)
    result = {"file_gb": round(path.stat().st_size / 1e9, 2), "rows": found["rows"],
              "columns": 20, "status": found["status"],
              "path": "monitors.intake.ingest.ingest_file (sha256 fingerprint, readers.read_csv in 8 MiB "
                      "blocks, BatchProfiler, metric rows into a fresh SQLite store), in a child process",
              "seconds": round(found["seconds"], 1), "cpu_seconds": round(found["cpu_seconds"], 1),
              "rows_per_second": round(found["rows"] / found["seconds"]) if found["rows"] else None,
              "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
              "arrow_pool_peak_mib": round(found["arrow_peak_mib"], 1), "target_peak_mib": 2048}
    if found["status"] != "ingested":
        print(f"csv: NOT ingested: {found['reason']}", flush=True)
    if not args.keep_csv:
        path.unlink()
        path.with_suffix(".rows").unlink()
    print(f"csv: {result}", flush=True)
    return result


# ---- 4. one dataset's backfill: this code against a baseline, interleaved -----------------


def _backfill_child(code: str, days: int, columns: int, rows: int) -> None:
    """In the child, with `code` (a checkout) first on sys.path: one file dataset of
    `columns` columns and its default monitors, `days` files delivered, one backfill run
    executed in this process (monitors.pipeline.run.execute_run); prints the run's seconds and stages."""
    sys.path.insert(0, code)
    for name in [m for m in sys.modules if m.split(".")[0] in ("monitors", "store", "detectors")]:
        del sys.modules[name]
    from monitors.catalog import sync_datasets
    from monitors.config import save_config
    from monitors.pipeline.run import execute_run
    from monitors.settings import load_settings
    from store.engine import open_store
    from store.models import Run

    plan = column_plan(columns)
    end = dt.date(2026, 6, 30)
    files = template_files(1, days, end, plan, rows)[0]
    home = Path(tempfile.mkdtemp(prefix="scale-backfill-", dir=DATA))
    try:
        settings = load_settings({"MONITORS_HOME": str(home)})
        config = _config(1, 1, plan)
        save_config(config, settings.config_path)
        engine, sessions = open_store(settings.db_url)
        _deliver(home, "ds000", files)
        with sessions.begin() as session:
            sync_datasets(session, config, home)
        run_id = _request(sessions, ["ds000"], end - dt.timedelta(days=days - 1), end, "backfill")[0]
        started, cpu = time.perf_counter(), time.process_time()
        execute_run(sessions, settings, run_id, notify=False)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        with sessions() as session:
            run = session.get(Run, run_id)
            status, error, stages = run.status, run.error, run.stages
            alerts = _alerts_digest(session)
        engine.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "status": str(status),
                      "error": error, "stages": stages} | alerts))


def _alerts_digest(session) -> dict:
    """What a backfill raised, as a count and a digest of every alert's facts (monitor,
    partition, numbers to the bit, message, repeats): two codes that judge alike agree on it."""
    from store.models import Alert

    rows = sorted(repr((a.monitor, a.column or "", str(a.partition), a.value, a.expected, a.lower,
                        a.upper, a.message, a.occurrences, str(a.status)))
                  for a in session.query(Alert))
    return {"alerts": len(rows), "alerts_sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest()}


def baseline_checkout(commit: str) -> Path:
    """The code at `commit`, exported (git archive) under /tmp: the baseline run beside this one."""
    target = Path(tempfile.gettempdir()) / f"monitors-baseline-{commit}"
    if not (target / "monitors").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def run_backfill(args) -> dict:
    """A backfill of one dataset of --columns columns over --backfill-days partitions, by
    this code and by the code at --baseline, alternating, --repeat times each; partitions/s
    on the run's wall and CPU time, and the ratio of the medians."""
    plan = column_plan(args.columns)
    template_files(1, args.backfill_days, dt.date(2026, 6, 30), plan, args.rows)  # generated once
    codes = {"this": ROOT, "baseline": baseline_checkout(args.baseline)}
    found: dict[str, list[dict]] = {name: [] for name in codes}
    for repeat in range(args.repeat):
        # alternating, so that a neighbour's burst of work does not land on one side only
        for name, code in (codes.items() if repeat % 2 == 0 else reversed(codes.items())):
            done = subprocess.run([sys.executable, __file__, "--backfill-child", str(code),
                                   "--backfill-days", str(args.backfill_days),
                                   "--columns", str(args.columns), "--rows", str(args.rows)],
                                  capture_output=True, text=True, cwd=code)
            if done.returncode:
                raise RuntimeError(f"backfill child ({name}) failed: {done.stderr[-2000:]}")
            measured = json.loads(done.stdout.strip().splitlines()[-1])
            if measured["status"] != "succeeded":
                raise RuntimeError(f"backfill run ({name}) {measured['status']}: {measured['error']}")
            measured["partitions_per_second"] = round(args.backfill_days / measured["seconds"], 2)
            measured["partitions_per_cpu_second"] = round(args.backfill_days / measured["cpu_seconds"], 2)
            found[name].append(measured)
            print(f"backfill: {name} {measured['seconds']:.1f} s ({measured['cpu_seconds']:.1f} s CPU): "
                  f"{measured['partitions_per_second']} partitions/s", flush=True)
    median = {name: {key: statistics.median(m[key] for m in runs)
                     for key in ("seconds", "cpu_seconds", "partitions_per_second",
                                 "partitions_per_cpu_second")}
              for name, runs in found.items()}
    stages = {name: {stage: round(statistics.median(m["stages"].get(stage, 0) for m in runs), 2)
                     for stage in runs[0]["stages"]} for name, runs in found.items()}
    result = {"dataset": f"one file dataset, {args.columns} columns, about {args.rows} rows a batch, "
                         "its default (automatic) monitors",
              "partitions": args.backfill_days, "repeat": args.repeat,
              "baseline": args.baseline, "median": median, "median_stage_seconds": stages,
              "speedup_wall": round(median["this"]["partitions_per_second"]
                                    / median["baseline"]["partitions_per_second"], 2),
              "speedup_cpu": round(median["this"]["partitions_per_cpu_second"]
                                   / median["baseline"]["partitions_per_cpu_second"], 2),
              "target_partitions_per_second": 40,
              "cpu_ms_per_partition": {name: round(1000 * m["cpu_seconds"] / args.backfill_days, 1)
                                       for name, m in median.items()},
              # the same alerts, to the bit, from both codes (a faster backfill that judged
              # differently would not be the same product)
              "same_alerts_as_baseline": len({m["alerts_sha256"] for runs in found.values()
                                              for m in runs}) == 1,
              "alerts": {name: runs[0]["alerts"] for name, runs in found.items()},
              "all": {name: [{k: round(v, 2) for k, v in m.items() if isinstance(v, float)}
                             for m in runs] for name, runs in found.items()}}
    print(f"backfill: this {median['this']['partitions_per_second']} partitions/s, baseline "
          f"{median['baseline']['partitions_per_second']}: x{result['speedup_wall']} "
          f"(CPU x{result['speedup_cpu']}); CPU per partition {result['cpu_ms_per_partition']} ms; "
          f"same alerts: {result['same_alerts_as_baseline']} ({result['alerts']})", flush=True)
    return result


# ---- the parent ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="cycle,pushdown,csv")
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--days", type=int, default=365, help="days of history before the cycle's day")
    parser.add_argument("--rows", type=int, default=1000, help="rows per batch (before the weekly season)")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (one per core)")
    parser.add_argument("--declared", type=int, default=0,
                        help="datasets declared in the config (at least --datasets); only --datasets are run")
    parser.add_argument("--templates", type=int, default=10, help="distinct seeded file generators")
    parser.add_argument("--backfill-datasets", type=int, default=20,
                        help="datasets whose year is backfilled through the worker (0: none)")
    parser.add_argument("--pushdown-rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="pushdown measurements per path")
    parser.add_argument("--csv-gb", type=float, default=5.0)
    parser.add_argument("--keep-csv", action="store_true")
    parser.add_argument("--keep-stores", action="store_true")
    parser.add_argument("--csv-child", help=argparse.SUPPRESS)
    parser.add_argument("--backfill-days", type=int, default=365, help="partitions of the backfill part")
    parser.add_argument("--baseline", default="2ae2fd0", help="the commit the backfill part compares with")
    parser.add_argument("--backfill-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.csv_child:
        _csv_child(args.csv_child)
        return
    if args.backfill_child:
        _backfill_child(args.backfill_child, args.backfill_days, args.columns, args.rows)
        return
    args.backfill_datasets = min(args.backfill_datasets, args.datasets)
    parts = args.parts.split(",")
    document = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runners = {"cycle": run_cycle, "pushdown": run_pushdown, "csv": run_csv, "backfill": run_backfill}
    for part in parts:
        started = time.perf_counter()
        found = runners[part](args)
        if part == "cycle" and "cycle" in document:
            # a run on one store keeps the other store's figures
            found["stores"] = document["cycle"].get("stores", {}) | found["stores"]
        document[part] = found | {"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                                "part_seconds": round(time.perf_counter() - started, 1)}
        document |= {"benchmark": "bench/scale.py",
                     "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                 "note": "2 cores shared with other processes; single runs unless stated"}}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
