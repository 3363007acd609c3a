"""Profiling a batch: this product beside DuckDB, polars and pandas, measured in the same run.

Synthetic batches (seeded, generated once into --data, /tmp/monitors-bench by default, never
committed): 1M rows x 20 mixed columns as Parquet (several row groups) and CSV, and 1M and 10M
rows x 14 numeric columns as Parquet. Each contender reads the file and computes its profile:

- product: what ``ingest`` does, in-process: the contract inferred from the file, then
  monitors.intake.readers.read_file -> monitors.intake.profile.BatchProfiler (every metric: counts, nulls,
  distinct, moments, 7 quantiles, zeros/negatives/infinite, lengths, top-20 frequencies).
- duckdb: one approximate SQL aggregate over the file: per column count (nulls),
  approx_count_distinct, min and max; for numbers also avg, stddev and approx_quantile at the
  same 7 ranks.
- polars: the same aggregates through a lazy scan (approx_n_unique, quantile).
- pandas: read whole, describe() + isna().sum() + nunique() (the issue's baseline).

Each measurement is its own child process; the figures are from inside it (reading plus
computing, after imports), its peak memory is the child's own peak RSS (os.wait4). Contenders
alternate within each repeat and the median of --repeat runs is kept; ratios are this
product's median over the peer's, < 1 meaning faster. DuckDB and polars use every core they
find, as a user would get them.

The CLI case times whole processes: `python -m monitors ingest --create` of the 1M Parquet
file into a fresh store, beside `python -c` reading it with pandas and running the same
describe + isna + nunique.

    python bench/profile.py                           # every case, 3 repeats
    python bench/profile.py --cases mixed-1M-parquet,cli --repeat 5
Figures: bench/results/profile.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "profile.json"
DEFAULT_DATA = Path(tempfile.gettempdir()) / "monitors-bench"
# bump when the generator changes, so stale files are not reused
GENERATOR_VERSION = 1
BLOCK = 1_000_000          # rows generated (and held) at a time
ROW_GROUP = 250_000        # several row groups per file, as a real writer would produce
QUANTILE_RANKS = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
CASES = {  # name: (kind, rows, format)
    "mixed-1M-parquet": ("mixed", 1_000_000, "parquet"),
    "mixed-1M-csv": ("mixed", 1_000_000, "csv"),
    "numeric-1M-parquet": ("numeric", 1_000_000, "parquet"),
    "numeric-10M-parquet": ("numeric", 10_000_000, "parquet"),
}
PEERS = ("duckdb", "polars", "pandas")
# at 10M rows pandas took 44 s and 3.4 GB (the run) and polars 164 s and 1.3 GB
# (this script's first run, 2026-12-03): left out of the 10M case to keep a run short
PEERS_10M = ("duckdb",)

SCHEMA = pa.schema([
    ("customer_id", pa.int64()),          # unique
    ("age", pa.int64()),
    ("products", pa.int64()),
    ("branch_code", pa.int64()),          # integer codes, profiled as categories
    ("account_number", pa.int64()),       # high cardinality, not unique
    ("income", pa.float64()),             # 12% nulls
    ("balance", pa.float64()),            # negatives
    ("score", pa.float64()),
    ("tenure_years", pa.float64()),       # 3% nulls, many zeros
    ("rate", pa.float64()),               # low cardinality
    ("spend", pa.float64()),              # 30% nulls
    ("segment", pa.string()),             # 6 values
    ("province", pa.string()),            # 52 values, 1% nulls
    ("channel", pa.string()),             # 4 values
    ("reference", pa.string()),           # high cardinality
    ("active", pa.bool_()),
    ("consent", pa.bool_()),              # 5% nulls
    ("event_at", pa.timestamp("us", tz="UTC")),
    ("opened_at", pa.timestamp("us", tz="UTC")),
    ("snapshot_day", pa.date32()),
])

SEGMENTS = np.array(["retail", "premium", "private", "student", "senior", "business"])
PROVINCES = np.array([f"province_{n:02d}" for n in range(52)])
CHANNELS = np.array(["branch", "web", "mobile", "phone"])


def _with_nulls(values: np.ndarray, rng: np.random.Generator, fraction: float) -> pa.Array:
    return pa.array(values, mask=rng.random(len(values)) < fraction)


def _block(index: int, rows: int, total: int) -> pa.RecordBatch:
    """Rows [index*BLOCK, index*BLOCK + rows) of a seeded batch; each block has its own
    seed so a 10M batch is generated in bounded memory."""
    rng = np.random.default_rng([2026, index])
    start = index * BLOCK
    ids = np.arange(start, start + rows, dtype=np.int64)
    accounts = rng.integers(0, total // 2 + 1, rows)
    epoch = 1_764_000_000_000_000  # late 2025, microseconds
    columns = [
        pa.array(ids),
        pa.array(rng.integers(18, 95, rows)),
        pa.array(rng.poisson(2.5, rows)),
        pa.array(rng.integers(0, 400, rows)),
        pa.array(accounts * 7 + 1_000_000),
        _with_nulls(rng.lognormal(10.3, 0.6, rows).round(2), rng, 0.12),
        pa.array(rng.normal(2_000, 5_000, rows).round(2)),
        pa.array(rng.beta(2, 5, rows)),
        _with_nulls(np.floor(rng.exponential(4, rows)), rng, 0.03),
        pa.array(rng.choice([0.5, 1.0, 1.5, 2.25, 3.0], rows)),
        _with_nulls(rng.gamma(2, 80, rows).round(2), rng, 0.30),
        pa.array(SEGMENTS[rng.choice(len(SEGMENTS), rows, p=[0.5, 0.2, 0.05, 0.1, 0.1, 0.05])]),
        _with_nulls(PROVINCES[rng.integers(0, len(PROVINCES), rows)], rng, 0.01),
        pa.array(CHANNELS[rng.integers(0, len(CHANNELS), rows)]),
        # built by Arrow, not by Python string formatting: 10M f-strings would dominate
        pc.binary_join_element_wise("REF-", pc.cast(pa.array(accounts * 13 % 999_983_000), pa.string()), ""),
        pa.array(rng.random(rows) < 0.7),
        _with_nulls(rng.random(rows) < 0.4, rng, 0.05),
        pa.array(epoch + rng.integers(0, 86_400_000_000, rows)).cast(pa.timestamp("us", tz="UTC")),
        pa.array(epoch - rng.integers(0, 20 * 365, rows) * 86_400_000_000).cast(pa.timestamp("us", tz="UTC")),
        pa.array(np.full(rows, 20_416, dtype=np.int32)).cast(pa.date32()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


NUMERIC_SCHEMA = pa.schema(
    [f for f in SCHEMA if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
    + [("quantity", pa.int64()), ("discount", pa.float64()), ("latitude", pa.float64())])


def _numeric(block: pa.RecordBatch, index: int) -> pa.RecordBatch:
    """The 11 numeric columns of a mixed block and three more: 14 numeric columns."""
    rng = np.random.default_rng([2027, index])
    rows = block.num_rows
    extra = [pa.array(rng.integers(1, 50, rows)),
             _with_nulls(rng.choice([0.0, 0.05, 0.1, 0.15, 0.2], rows), rng, 0.02),
             pa.array(rng.uniform(35.0, 60.0, rows).round(5))]
    columns = [block.column(f.name) for f in list(NUMERIC_SCHEMA)[:11]] + extra
    return pa.RecordBatch.from_arrays(columns, schema=NUMERIC_SCHEMA)


def ensure_data(rows: int, kind: str, data: Path) -> dict[str, Path]:
    """The files of a ``kind`` batch of ``rows`` rows, generated when missing: Parquet, and
    CSV for the mixed batch (the numeric cases are Parquet only)."""
    data.mkdir(parents=True, exist_ok=True)
    schema = SCHEMA if kind == "mixed" else NUMERIC_SCHEMA
    stem = data / f"{kind}_{rows}_v{GENERATOR_VERSION}"
    formats = ("parquet", "csv") if kind == "mixed" else ("parquet",)
    paths = {fmt: stem.with_suffix(f".{fmt}") for fmt in formats}
    if all(p.exists() for p in paths.values()):
        return paths
    started = time.perf_counter()
    partial = {k: p.with_name(p.name + ".partial") for k, p in paths.items()}
    parquet = pq.ParquetWriter(partial["parquet"], schema)
    csv = pacsv.CSVWriter(partial["csv"], schema) if "csv" in partial else None
    for index in range((rows + BLOCK - 1) // BLOCK):
        block = _block(index, min(BLOCK, rows - index * BLOCK), rows)
        if kind == "numeric":
            block = _numeric(block, index)
        table = pa.Table.from_batches([block])
        parquet.write_table(table, row_group_size=ROW_GROUP)
        if csv is not None:
            csv.write_table(table)
    parquet.close()
    if csv is not None:
        csv.close()
    for fmt, path in partial.items():
        path.replace(paths[fmt])
    print(f"generated {kind} {rows:,} rows in {time.perf_counter() - started:.1f}s", flush=True)
    return paths


# ---- what runs inside a child process ------------------------------------------------------

def measure_product(fmt: str, path: Path) -> dict:
    from monitors.contract import infer_contract
    from monitors.intake.profile import BatchProfiler
    from monitors.intake.readers import read_file, read_schema

    started, cpu = time.perf_counter(), time.process_time()
    contract = infer_contract(read_schema(path, fmt))
    profiler = BatchProfiler(contract.arrow_schema(), categorical=contract.categorical())
    for chunk in read_file(path, fmt, contract, dictionaries=True):  # as ingest reads
        profiler.update(chunk)
    metrics = profiler.metrics()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "metrics": len(metrics), "rows": profiler.rows}


def _is_number(dtype: str) -> bool:
    return any(word in dtype.upper() for word in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL"))


def measure_duckdb(fmt: str, path: Path) -> dict:
    import duckdb

    started, cpu = time.perf_counter(), time.process_time()
    source = f"read_parquet('{path}')" if fmt == "parquet" else f"read_csv('{path}')"
    con = duckdb.connect()
    columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    ranks = ", ".join(str(q) for q in QUANTILE_RANKS)
    parts = ["count(*)"]
    for name, dtype, *_ in columns:
        c = f'"{name}"'
        parts += [f"count({c})", f"approx_count_distinct({c})"]
        if dtype != "BOOLEAN" and dtype != "VARCHAR":
            parts += [f"min({c})", f"max({c})"]
        if _is_number(dtype):
            parts += [f"avg({c})", f"stddev_samp({c})", f"approx_quantile({c}, [{ranks}])"]
    row = con.execute(f"SELECT {', '.join(parts)} FROM {source}").fetchone()
    metrics = sum(len(v) if isinstance(v, list) else 1 for v in row)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "metrics": metrics, "rows": row[0]}


def measure_polars(fmt: str, path: Path) -> dict:
    import polars as pl

    started, cpu = time.perf_counter(), time.process_time()
    frame = pl.scan_parquet(path) if fmt == "parquet" else pl.scan_csv(path, try_parse_dates=True)
    schema = frame.collect_schema()
    exprs = [pl.len().alias("rows")]
    for name, dtype in schema.items():
        c = pl.col(name)
        exprs += [c.null_count().alias(f"{name}.nulls"), c.approx_n_unique().alias(f"{name}.distinct")]
        if dtype != pl.Boolean and dtype != pl.String:
            exprs += [c.min().alias(f"{name}.min"), c.max().alias(f"{name}.max")]
        if dtype.is_numeric():
            exprs += [c.mean().alias(f"{name}.mean"), c.std().alias(f"{name}.std")]
            exprs += [c.quantile(q).alias(f"{name}.q{q}") for q in QUANTILE_RANKS]
    found = frame.select(exprs).collect()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "metrics": found.width, "rows": int(found["rows"][0])}


def measure_pandas(fmt: str, path: Path) -> dict:
    import pandas as pd

    started, cpu = time.perf_counter(), time.process_time()
    frame = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, engine="pyarrow")
    described = frame.describe()
    nulls = frame.isna().sum()
    distinct = frame.nunique()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "metrics": int(described.size + nulls.size + distinct.size), "rows": len(frame)}


MEASURES = {"product": measure_product, "duckdb": measure_duckdb, "polars": measure_polars,
            "pandas": measure_pandas}


# ---- the parent ----------------------------------------------------------------------------

def _run(command: list[str], env: dict | None = None) -> tuple[bytes, float, float]:
    """Runs a process; its stdout, wall seconds and peak RSS in MiB (its own, from wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env, cwd=ROOT)
    out = child.stdout.read()
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the max over all children
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command[:6])} failed with exit code {os.waitstatus_to_exitcode(status)}")
    return out, seconds, round(usage.ru_maxrss / 1024, 1)  # Linux reports KiB


def run_child(what: str, fmt: str, path: Path) -> dict:
    out, _, peak = _run([sys.executable, __file__, "--child", what, "--format", fmt, "--path", str(path)])
    result = json.loads(out) | {"peak_rss_mib": peak}
    result["seconds"], result["cpu_seconds"] = round(result["seconds"], 3), round(result["cpu_seconds"], 3)
    return result


PANDAS_PROCESS = ("import sys, pandas as pd; f = pd.read_parquet(sys.argv[1]); "
                  "f.describe(); f.isna().sum(); f.nunique()")


def run_cli(what: str, path: Path) -> dict:
    if what == "pandas":
        _, seconds, peak = _run([sys.executable, "-c", PANDAS_PROCESS, str(path)])
        return {"seconds": round(seconds, 3), "peak_rss_mib": peak}
    home = Path(tempfile.mkdtemp(prefix="monitors-bench-home-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITORS_")}
        env["MONITORS_HOME"] = str(home)
        env["MONITORS_FILE_ROOTS"] = str(path.parent)
        _, seconds, peak = _run([sys.executable, "-m", "monitors", "ingest", "--dataset", "bench", "--create",
                                 "--partition", "2026-01-01", str(path)], env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"seconds": round(seconds, 3), "peak_rss_mib": peak}


def _summary(runs: list[dict]) -> dict:
    middle = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
    return middle | {"all_seconds": [r["seconds"] for r in runs],
                     "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
                     "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs)}


def measure_case(name: str, data: Path, repeat: int) -> dict:
    if name == "cli":
        path = ensure_data(1_000_000, "mixed", data)["parquet"]
        contenders, run = ("product", "pandas"), (lambda what: run_cli(what, path))
        case = {"case": name, "what": "python -m monitors ingest --create (fresh SQLite store) vs "
                                      "python -c pandas read_parquet + describe + isna + nunique, whole processes"}
    else:
        kind, rows, fmt = CASES[name]
        path = ensure_data(rows, kind, data)[fmt]
        contenders = ("product", *(PEERS_10M if rows > 1_000_000 else PEERS))
        run = (lambda what: run_child(what, fmt, path))
        case = {"case": name, "rows": rows, "format": fmt,
                "columns": len(SCHEMA if kind == "mixed" else NUMERIC_SCHEMA),
                "file_mib": round(path.stat().st_size / 2**20, 1)}
    measured = {what: [] for what in contenders}
    for _ in range(repeat):
        # interleaved, so that a neighbour's burst of work does not land on one side only
        for what in contenders:
            measured[what].append(run(what))
    for what in contenders:
        case[what] = _summary(measured[what])
    for what in contenders[1:]:
        case[f"ratio_vs_{what}"] = round(case["product"]["median_seconds"] / case[what]["median_seconds"], 2)
    line = "  ".join(f"{what} {case[what]['median_seconds']:6.2f}s {case[what]['peak_rss_mib']:6.0f} MiB"
                     for what in contenders)
    ratios = "  ".join(f"/{what} {case[f'ratio_vs_{what}']:.2f}" for what in contenders[1:])
    print(f"{name:<20} {line}   ratio {ratios}", flush=True)
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join([*CASES, "cli"]),
                        help=f"comma-separated, of {', '.join([*CASES, 'cli'])}")
    parser.add_argument("--repeat", type=int, default=3, help="measurements per contender; the median is kept")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="where the synthetic files go")
    parser.add_argument("--child", choices=list(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(MEASURES[args.child](args.format, Path(args.path))))
        return

    cases = [measure_case(name, args.data, args.repeat) for name in args.cases.split(",")]
    # a subset run replaces its own cases and keeps the others
    if RESULTS.exists():
        previous = json.loads(RESULTS.read_text()).get("cases", [])
        done = {c["case"] for c in cases}
        cases = [c for c in previous if c.get("case") and c["case"] not in done] + cases
    by_name = {c["case"]: c for c in cases}
    growth = {}
    if "numeric-1M-parquet" in by_name and "numeric-10M-parquet" in by_name:
        small, large = by_name["numeric-1M-parquet"], by_name["numeric-10M-parquet"]
        for what in ("product", *PEERS_10M):
            growth[what] = {"time": round(large[what]["median_seconds"] / small[what]["median_seconds"], 2),
                            "peak_rss": round(large[what]["peak_rss_mib"] / small[what]["peak_rss_mib"], 2)}
            print(f"numeric 1M -> 10M rows, {what}: {growth[what]['time']}x the time, "
                  f"{growth[what]['peak_rss']}x the peak memory")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "bench/profile.py",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_at_end": os.getloadavg(),
                    "note": "2 cores shared with other processes; medians of interleaved repeats"},
        "repeat": args.repeat,
        "contenders": {"product": "contract inferred from the file, monitors.intake.readers.read_file -> BatchProfiler",
                       "duckdb": "approx SQL: count, approx_count_distinct, min, max, avg, stddev_samp, "
                                 "approx_quantile (7 ranks)",
                       "polars": "lazy scan: null_count, approx_n_unique, min, max, mean, std, quantile (7 ranks)",
                       "pandas": "read whole + describe() + isna().sum() + nunique()"},
        "ratio": "this product's median seconds / the peer's, measured in the same run (< 1: faster)",
        "cases": cases,
        "growth_1M_to_10M": growth,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
