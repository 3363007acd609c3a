"""Benchmark of the one-pass batch profiler (issue 2, item 7).

Synthetic batches of 1M and 10M rows x 20 mixed columns are written (seeded, once, into
bench/data/, which git ignores) as Parquet with several row groups and as CSV. Each batch is
profiled through the streaming path the ingestion uses (ParquetFile.iter_batches,
pyarrow.csv.open_csv), and, as a baseline in the same run, loaded whole by pandas and
summarised with describe() + isna().sum() + nunique(). Loading is included in both figures:
the profiler never holds the whole batch, so there is no loaded frame to time it against.

Every measurement runs in its own child process; its wall and CPU time (process_time, all
threads) come from the child and cover reading plus computing, not interpreter start and
imports; its peak memory is the child's own peak RSS (os.wait4's rusage), so one
measurement's heap never inflates another's. Profile and baseline runs alternate, and the
median of --repeat runs is kept: on a shared machine CPU time is the steadier figure.

    python bench/profile.py                       # 1M and 10M rows, Parquet and CSV
    python bench/profile.py --rows 1000000        # a subset
Figures: bench/results/profile.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results" / "profile.json"
# bump when the generator changes, so stale files are not reused
GENERATOR_VERSION = 1
BLOCK = 1_000_000          # rows generated (and held) at a time
ROW_GROUP = 250_000        # several row groups per file, as a real writer would produce
STREAM_BATCH = 256_000     # rows per record batch handed to the profiler from Parquet
# the streaming CSV reader's Arrow memory peaked near 37x its block size here (readahead and
# conversion buffers): 8 MiB blocks peaked at 0.3 GB, 32 MiB blocks at 1.2 GB
CSV_BLOCK_BYTES = 8 << 20
CATEGORICAL = ["branch_code"]

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


def ensure_data(rows: int) -> dict[str, Path]:
    """The Parquet and CSV files of a batch of ``rows`` rows, generated when missing."""
    DATA.mkdir(parents=True, exist_ok=True)
    stem = DATA / f"batch_{rows}_v{GENERATOR_VERSION}"
    paths = {"parquet": stem.with_suffix(".parquet"), "csv": stem.with_suffix(".csv")}
    if all(p.exists() for p in paths.values()):
        return paths
    started = time.perf_counter()
    partial = {k: p.with_name(p.name + ".partial") for k, p in paths.items()}
    with pq.ParquetWriter(partial["parquet"], SCHEMA) as parquet, \
            pacsv.CSVWriter(partial["csv"], SCHEMA) as csv:
        for index in range(0, (rows + BLOCK - 1) // BLOCK):
            block = _block(index, min(BLOCK, rows - index * BLOCK), rows)
            table = pa.Table.from_batches([block])
            parquet.write_table(table, row_group_size=ROW_GROUP)
            csv.write_table(table)
    for kind, path in partial.items():
        path.replace(paths[kind])
    print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f}s "
          f"({paths['parquet'].stat().st_size >> 20} MiB Parquet, {paths['csv'].stat().st_size >> 20} MiB CSV)",
          flush=True)
    return paths


# ---- what runs inside a child process ------------------------------------------------------

def _stream(fmt: str, path: Path):
    if fmt == "parquet":
        # pre_buffer (the default) keeps every row group it has read: Arrow memory grew to the
        # file's size (0.57 GB at 10M rows); without it the reader stayed under 0.1 GB
        yield from pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=STREAM_BATCH)
        return
    # the contract's types, as ingestion declares them: no type inference on a sample
    convert = pacsv.ConvertOptions(column_types=SCHEMA, strings_can_be_null=False)
    reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                            convert_options=convert)
    yield from reader


def measure_profile(fmt: str, path: Path) -> dict:
    from monitors.intake.profile import BatchProfiler

    started, cpu = time.perf_counter(), time.process_time()
    profiler = BatchProfiler(SCHEMA, categorical=CATEGORICAL)
    chunks = 0
    for chunk in _stream(fmt, path):
        profiler.update(chunk)
        chunks += 1
    metrics = profiler.metrics()
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
            "metrics": len(metrics), "chunks": chunks, "rows": profiler.rows}


def measure_baseline(fmt: str, path: Path) -> dict:
    import pandas as pd

    started, cpu = time.perf_counter(), time.process_time()
    if fmt == "parquet":
        frame = pd.read_parquet(path)
    else:
        timestamps = [f.name for f in SCHEMA if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
        frame = pd.read_csv(path, engine="pyarrow", parse_dates=timestamps)
    loaded = time.perf_counter()
    described = frame.describe()
    nulls = frame.isna().sum()
    distinct = frame.nunique()
    finished = time.perf_counter()
    return {"seconds": finished - started, "cpu_seconds": time.process_time() - cpu,
            "load_seconds": loaded - started,
            "compute_seconds": finished - loaded, "rows": len(frame),
            "metrics": int(described.size + nulls.size + distinct.size)}


def _child(args: argparse.Namespace) -> None:
    run = measure_profile if args.child == "profile" else measure_baseline
    print(json.dumps(run(args.format, Path(args.path))))


# ---- the parent ----------------------------------------------------------------------------

def run_child(what: str, fmt: str, path: Path) -> dict:
    command = [sys.executable, __file__, "--child", what, "--format", fmt, "--path", str(path)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE)
    out = child.stdout.read()
    # wait4 gives this child's own rusage; RUSAGE_CHILDREN would be the max over all children
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{what} on {path.name} failed with exit code {child.returncode}")
    result = json.loads(out)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # Linux reports KiB
    result["rows_per_second"] = round(result["rows"] / result["seconds"])
    result["seconds"] = round(result["seconds"], 3)
    result["cpu_seconds"] = round(result["cpu_seconds"], 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, action="append",
                        help="batch size; repeat for several (default: 1000000 and 10000000)")
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per case; the median is kept")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--child", choices=["profile", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    sizes = args.rows or [1_000_000, 10_000_000]
    formats = args.formats.split(",")
    cases = []
    for rows in sizes:
        paths = ensure_data(rows)
        for fmt in formats:
            case = {"rows": rows, "format": fmt, "file_mib": round(paths[fmt].stat().st_size / 2**20, 1)}
            contenders = ("profile",) if args.no_baseline else ("profile", "baseline")
            # interleaved, so that a neighbour's burst of work does not land on one side only
            measured = {what: [] for what in contenders}
            for _ in range(args.repeat):
                for what in contenders:
                    measured[what].append(run_child(what, fmt, paths[fmt]))
            for what in contenders:
                runs = sorted(measured[what], key=lambda r: r["seconds"])
                case[what] = runs[len(runs) // 2] | {"all_seconds": [r["seconds"] for r in runs],
                                                     "peak_rss_mib_max": max(r["peak_rss_mib"] for r in runs)}
                r = case[what]
                print(f"{rows:>11,} rows {fmt:<8} {what:<9} {r['seconds']:8.2f}s (cpu {r['cpu_seconds']:6.1f}s) "
                      f"{r['rows_per_second']:>12,} rows/s  peak {r['peak_rss_mib']:8.1f} MiB  "
                      f"{r['metrics']} metrics", flush=True)
            if "baseline" in case:
                case["speedup_vs_baseline"] = round(case["baseline"]["seconds"] / case["profile"]["seconds"], 2)
                case["cpu_speedup_vs_baseline"] = round(
                    case["baseline"]["cpu_seconds"] / case["profile"]["cpu_seconds"], 2)
                print(f"{'':>11} {'':>13} profile is {case['speedup_vs_baseline']}x the baseline's speed "
                      f"({case['cpu_speedup_vs_baseline']}x in CPU time)", flush=True)
            cases.append(case)

    # a subset run replaces its own cases and keeps the others
    if RESULTS.exists():
        measured = {(c["rows"], c["format"]) for c in cases}
        kept = [c for c in json.loads(RESULTS.read_text()).get("cases", [])
                if (c["rows"], c["format"]) not in measured]
        cases = sorted(kept + cases, key=lambda c: (c["rows"], c["format"]))
    scaling = {}
    for fmt in sorted({c["format"] for c in cases}):
        by_rows = {c["rows"]: c for c in cases if c["format"] == fmt}
        if len(by_rows) >= 2:
            small, large = min(by_rows), max(by_rows)
            for what in ("profile", "baseline"):
                if what in by_rows[small] and what in by_rows[large]:
                    ratio = by_rows[large][what]["seconds"] / by_rows[small][what]["seconds"]
                    cpu = by_rows[large][what]["cpu_seconds"] / by_rows[small][what]["cpu_seconds"]
                    scaling[f"{fmt}.{what}"] = {"rows_ratio": large / small, "time_ratio": round(ratio, 2),
                                                "cpu_time_ratio": round(cpu, 2)}
                    print(f"{fmt} {what}: {large / small:.0f}x the rows took {ratio:.1f}x the time "
                          f"({cpu:.1f}x the CPU time)")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "bench/profile.py",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "note": "2 cores shared with other processes; figures are single runs unless repeat > 1"},
        "loading": "included in both the profile and the baseline",
        "baseline": "pandas read_parquet / read_csv(engine='pyarrow') + describe() + isna().sum() + nunique()",
        "profile": f"monitors.intake.profile.BatchProfiler over ParquetFile(pre_buffer=False).iter_batches({STREAM_BATCH}) / "
                   f"pyarrow.csv.open_csv(block_size={CSV_BLOCK_BYTES}), categorical={CATEGORICAL}",
        "repeat": args.repeat,
        "cases": cases,
        "scaling": scaling,
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
