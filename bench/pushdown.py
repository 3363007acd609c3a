"""Benchmark of SQL pushdown (issue 6): profiling a 1M-row PostgreSQL partition inside the
database versus pulling its rows into the Arrow profiler (the path SQL ingestion took before).

A throwaway PostgreSQL server is started for the run (as tests/conftest.py does) and the
table is generated inside it by generate_series (seeded), so no rows cross the wire while
it is built. Both paths profile the same partition with the same contract; each is run
--repeat times, alternating, and the median wall time kept. The two profiles are compared
metric by metric and the largest relative difference is reported with the figures.

    python bench/pushdown.py                   # 1M rows, 2 repeats
    python bench/pushdown.py --rows 200000
Figures: bench/results/pushdown.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from monitors.contract import ColumnSpec, Contract  # noqa: E402
from monitors.intake.profile import BatchProfiler, MetricValue  # noqa: E402
from monitors.intake.pushdown import profile_sql_partition  # noqa: E402
from monitors.intake.readers import ContractViolation, conform  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "pushdown.json"
DAY = dt.date(2026, 3, 2)
CONTRACT = Contract(columns=[
    ColumnSpec(name="quantity", type="integer"),
    ColumnSpec(name="amount", type="float"),
    ColumnSpec(name="category", type="string"),
    ColumnSpec(name="paid", type="boolean"),
    ColumnSpec(name="shipped_on", type="date"),
    ColumnSpec(name="branch", type="integer", categorical=True),
])


def read_sql(url: str, table_name: str, partition_key: str, partition: object,
             contract: Contract, chunk_rows: int = 100_000) -> Iterator[pa.Table]:
    """The baseline: one partition of a SQL table pulled into the client in chunks,
    conformed to the contract as files are, for the Arrow profiler."""
    from sqlalchemy import column, create_engine, select, table
    from sqlalchemy.exc import SQLAlchemyError

    where = f"{table_name} where {partition_key} = {partition}"
    source = table(table_name, *(column(n) for n in [*contract.names, partition_key]))
    query = select(*(source.c[n] for n in contract.names)).where(
        source.c[partition_key] == partition)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            result = connection.execution_options(stream_results=True).execute(query)
            rows = 0
            for part in result.partitions(chunk_rows):
                arrays = list(zip(*part)) or [[] for _ in contract.names]
                chunk = pa.table({n: pa.array(a) for n, a in zip(contract.names, arrays)})
                yield conform(chunk, contract, where, rows)
                rows += chunk.num_rows
    except SQLAlchemyError as exc:
        raise ContractViolation(f"{where}: {str(exc).splitlines()[0]}") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ContractViolation(f"{where}: values that don't convert ({exc})") from None
    finally:
        engine.dispose()


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2].split(".")[0]))
    if not bins:
        sys.exit("PostgreSQL's server binaries are not installed")
    pgbin = Path(bins[-1])
    root = Path(tempfile.mkdtemp(prefix="pgbench-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = str(root / "data")
    subprocess.run(_as_postgres([str(pgbin / "initdb"), "-D", data, "-U", "postgres", "-A", "trust",
                                 "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
    # the defaults a small warehouse would have; fsync off only because the data is throwaway
    subprocess.run(_as_postgres([str(pgbin / "pg_ctl"), "-D", data, "-l", str(root / "log"), "-w", "-o",
                                 f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
                                 "-c shared_buffers=256MB -c work_mem=64MB", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(pgbin / "pg_ctl"), "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def build(engine: sa.Engine, rows: int) -> None:
    """``rows`` rows in the measured partition and a tenth as many on the next day."""
    table = sa.Table("orders", sa.MetaData(), sa.Column("day", sa.Date), sa.Column("quantity", sa.BigInteger),
                     sa.Column("amount", sa.Float), sa.Column("category", sa.Text),
                     sa.Column("paid", sa.Boolean), sa.Column("shipped_on", sa.Date),
                     sa.Column("branch", sa.Integer))
    table.create(engine)
    random = sa.func.random
    for day, count in ((DAY, rows), (DAY + dt.timedelta(days=1), rows // 10)):
        n = sa.func.generate_series(1, count).table_valued("n").render_derived(name="g")
        generated = sa.select(
            sa.literal(day, sa.Date),
            sa.cast(sa.func.floor(random() * 120) - 20, sa.BigInteger),
            sa.case((random() < 0.05, None), else_=1_000_000 + random() * 50),
            sa.literal("cat") + sa.cast(sa.func.floor(sa.func.power(random(), 3) * 300), sa.Text),
            random() < 0.3,
            sa.literal(day, sa.Date) - sa.cast(sa.func.floor(random() * 90), sa.Integer),
            sa.cast(n.c.n % 40, sa.Integer),
        ).select_from(n)
        with engine.begin() as connection:
            connection.execute(sa.select(sa.func.setseed(0.42)))
            connection.execute(table.insert().from_select([c.name for c in table.c], generated))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # hint bits and statistics set now, so that neither path pays for them in its timing
        connection.execute(sa.text("VACUUM ANALYZE orders"))


def pushdown(engine: sa.Engine) -> list[MetricValue]:
    return profile_sql_partition(engine, "orders", "day", DAY, CONTRACT)


def pulling(url: str) -> list[MetricValue]:
    profiler = BatchProfiler(CONTRACT.arrow_schema(), categorical=CONTRACT.categorical())
    for chunk in read_sql(url, "orders", "day", DAY, CONTRACT):
        profiler.update(chunk)
    return profiler.metrics()


def largest_differences(left: list[MetricValue], right: list[MetricValue]) -> list[dict]:
    """The three largest relative differences, metric by metric."""
    a = {(m.column, m.metric, m.key): m.value for m in left}
    b = {(m.column, m.metric, m.key): m.value for m in right}
    if a.keys() != b.keys():
        return [{"metric": f"different metrics: {sorted(a.keys() ^ b.keys(), key=str)[:5]}", "value": None}]
    found = [{"metric": "/".join(str(k) for k in key if k),
              "value": abs(value - b[key]) / max(abs(b[key]), 1e-12)} for key, value in a.items()]
    return sorted(found, key=lambda d: -d["value"])[:3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with postgres() as url:
        engine = sa.create_engine(url)
        started = time.perf_counter()
        build(engine, args.rows)
        print(f"built {args.rows} + {args.rows // 10} rows in {time.perf_counter() - started:.1f} s", flush=True)
        times: dict[str, list[float]] = {"pushdown": [], "pulling": []}
        cpu: dict[str, list[float]] = {"pushdown": [], "pulling": []}
        profiles: dict[str, list[MetricValue]] = {}
        peak: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, run in (("pushdown", lambda: pushdown(engine)), ("pulling", lambda: pulling(url))):
                started, started_cpu = time.perf_counter(), time.process_time()
                profiles[name] = run()
                times[name].append(round(time.perf_counter() - started, 3))
                cpu[name].append(round(time.process_time() - started_cpu, 3))
                # ru_maxrss only grows: pushdown runs first, so its figure is its own
                peak.setdefault(name, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
                print(f"{name}: {times[name][-1]:.2f} s", flush=True)
        engine.dispose()
    differences = largest_differences(profiles["pushdown"], profiles["pulling"])
    median = {name: statistics.median(found) for name, found in times.items()}
    document = {
        "benchmark": "bench/pushdown.py",
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "note": "2 cores shared with other processes; the server runs on the same machine"},
        "postgresql": "throwaway local server, shared_buffers=256MB, work_mem=64MB, fsync=off",
        "rows": args.rows,
        "table": "orders: partition day, 6 profiled columns (bigint, float8 with 5% nulls, text with "
                 "300 categories, boolean, date, integer categorical), plus rows // 10 on another day",
        "pushdown": "monitors.intake.pushdown.profile_sql_partition: aggregate queries, results only",
        "pulling": "read_sql here (server-side cursor, 100k-row chunks) into BatchProfiler",
        "seconds": median,
        "all_seconds": times,
        "speedup": round(median["pulling"] / median["pushdown"], 2),
        # where the work runs: pushdown leaves the client almost idle, the server does the rest
        "client_cpu_seconds": {name: statistics.median(found) for name, found in cpu.items()},
        "client_peak_rss_mib": {name: round(value, 1) for name, value in peak.items()},
        "metrics": len(profiles["pushdown"]),
        # BatchProfiler estimates distinct counts with a k-minimum-values sketch past 100k values; pushdown counts exactly
        "largest_relative_differences": differences,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"pushdown {median['pushdown']:.2f} s, pulling {median['pulling']:.2f} s "
          f"(x{document['speedup']}); client CPU {document['client_cpu_seconds']}; "
          f"largest relative differences {differences}")


if __name__ == "__main__":
    main()
