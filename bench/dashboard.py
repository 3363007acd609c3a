"""Server-side time of each dashboard page (issue 5), at production-like size.

A store with 50 datasets (40 of kind data, 10 model outputs), two years of daily batches,
their metrics (about 80 per dataset and day: 2.9M rows), one run per dataset and day, and
10,000 alerts is generated directly with bulk inserts (seeded; a minute), then each page is
run through Streamlit's AppTest from streamlit_app.py, as the tests do, and timed:

- cold: st.cache_data cleared before the run, so every query and figure is computed;
- warm: the run right after, cached queries answered from memory (a person clicking on).

Each is repeated --repeat times; the median and the max are kept. The time is the whole
script run of the page on the server (queries, pandas, figure building, serialising the
elements), not the browser's drawing.

    python bench/dashboard.py                 # builds the store once under /tmp, then times
    python bench/dashboard.py --rebuild --repeat 7
Figures: bench/results/dashboard.json.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from monitors.config import DatasetConfig, MonitorsConfig, save_config  # noqa: E402
from monitors.contract import ColumnSpec, Contract  # noqa: E402
from monitors.settings import load_settings  # noqa: E402
from store.engine import open_store  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "dashboard.json"
DEFAULT_HOME = Path("/tmp/monitors-bench-dashboard")
GENERATOR_VERSION = 1
DATASETS = 50
MODEL_OUTPUTS = 10
DAYS = 730
ALERTS = 10_000
END = dt.date(2026, 6, 30)
NUMERIC = ["amount", "balance", "age", "tenure"]
CATEGORIES = {"channel": ["branch", "online", "mobile", "phone", "partner"],
              "segment": ["individual", "university", "vip", "business", "other"]}
MONITORS = ["volume:anomalies", "volume:breakouts", "freshness:late", "freshness:missing",
            "contract", *(f"nulls:{c}" for c in NUMERIC), *(f"level:{c}" for c in NUMERIC),
            *(f"categories:{c}" for c in CATEGORIES)]
PAGES = {  # label -> (page file, query params)
    "datasets": ("dashboard/views/datasets.py", {}),
    "datasets?dataset=table_00": ("dashboard/views/datasets.py", {"dataset": "table_00"}),
    "model_outputs": ("dashboard/views/model_outputs.py", {}),
    "monitors": ("dashboard/views/monitors.py", {}),
    "pipeline": ("dashboard/views/pipeline.py", {}),
    "overview": ("dashboard/views/overview.py", {}),
    "alerts": ("dashboard/views/alerts.py", {}),
    "alert?alert=ID": ("dashboard/views/alert.py", {"alert": "1"}),
}


def _contract(kind: str) -> Contract:
    if kind == "model_output":
        return Contract(columns=[
            ColumnSpec(name="customer_id", type="integer", nullable=False, sensitive=True),
            ColumnSpec(name="score", type="float", nullable=False),
            ColumnSpec(name="predicted_class", type="string", nullable=False)])
    return Contract(columns=[
        ColumnSpec(name="customer_id", type="integer", nullable=False, sensitive=True),
        *(ColumnSpec(name=c, type="float") for c in NUMERIC),
        *(ColumnSpec(name=c, type="string") for c in CATEGORIES)])


def _name(index: int) -> str:
    return f"scores_{index:02d}" if index >= DATASETS - MODEL_OUTPUTS else f"table_{index:02d}"


def build(home: Path, seed: int = 5) -> dict:
    """The store and config at `home`; returns the counts of what was written."""
    started = time.perf_counter()
    home.mkdir(parents=True, exist_ok=True)
    for leftover in home.glob("monitors.db*"):
        leftover.unlink()
    settings = load_settings({"MONITORS_HOME": str(home)})
    engine, _ = open_store(settings.db_url)  # the schema, through the migrations
    engine.dispose()
    rng = np.random.default_rng(seed)
    first = END - dt.timedelta(days=DAYS - 1)
    days = [first + dt.timedelta(days=i) for i in range(DAYS)]
    declared = []
    db = sqlite3.connect(home / "monitors.db")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA journal_mode=WAL")
    counts = {"datasets": 0, "batches": 0, "metrics": 0, "runs": 0, "alerts": 0}
    now = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    batch_id = run_id = 0
    for index in range(DATASETS):
        name = _name(index)
        kind = "model_output" if name.startswith("scores") else "data"
        contract = _contract(kind)
        declared.append(DatasetConfig(name=name, kind=kind, format="parquet", source=f"landing/{name}",
                                      schedule=f"{index % 60} {index % 24} * * *", contract=contract))
        dataset_id = index + 1
        db.execute("INSERT INTO datasets (id, name, kind, source, format, partition_key, contract, schedule,"
                   " deadline_hours, paused, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   (dataset_id, name, kind, str(home / "landing" / name), "parquet", "partition",
                    json.dumps(contract.to_json()), f"{index % 60} {index % 24} * * *", 6.0, False, now))
        rows = (2000 * (1 + 0.001 * np.arange(DAYS)) * rng.normal(1, 0.03, DAYS)).astype(int)
        delays = rng.gamma(4, 0.6, DAYS)
        batches, metrics, runs = [], [], []
        for i, day in enumerate(days):
            batch_id += 1
            run_id += 1
            arrived = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC) \
                + dt.timedelta(hours=float(delays[i]))
            quarantined = i % 97 == 50
            batches.append((batch_id, dataset_id, day.isoformat(), "quarantined" if quarantined else "ingested",
                            int(rows[i]), len(contract.columns), "missing column(s) x" if quarantined else None,
                            "", f"{batch_id:064x}", None if quarantined else "ab" * 32,
                            arrived.isoformat(sep=" "), arrived.isoformat(sep=" ")))
            started_at = arrived + dt.timedelta(hours=10)
            runs.append((run_id, dataset_id, "succeeded", "schedule", day.isoformat(), day.isoformat(), 1, 1,
                         "scheduler", started_at.isoformat(sep=" "), started_at.isoformat(sep=" "),
                         (started_at + dt.timedelta(seconds=float(rng.uniform(0.2, 3)))).isoformat(sep=" "),
                         "{}", json.dumps({"ingest": 0.1, "history": 0.05, "evaluate": 0.3, "alerts": 0.01}),
                         f"{name}: 1 partition(s)\n{day}: ingested\n{day}: 0 finding(s)"))
            if quarantined:
                continue
            at = day.isoformat()
            metrics += [(dataset_id, batch_id, at, None, "row_count", "", float(rows[i])),
                        (dataset_id, batch_id, at, None, "column_count", "", float(len(contract.columns))),
                        (dataset_id, batch_id, at, None, "arrival_delay_hours", "", float(delays[i]))]
            numeric = ["score"] if kind == "model_output" else NUMERIC
            for column in numeric:
                centre = rng.normal(0.3 if kind == "model_output" else 100, 0.01 if kind == "model_output" else 2)
                spread = 0.1 if kind == "model_output" else 30
                quantiles = np.sort(centre + spread * np.array([-3, -2.3, -1.6, -0.7, 0, 0.7, 1.6, 2.3, 3]))
                for key, value in zip(["min", "p01", "p05", "p25", "p50", "p75", "p95", "p99", "max"], quantiles):
                    metrics.append((dataset_id, batch_id, at, column, key, "", float(value)))
                metrics += [(dataset_id, batch_id, at, column, "count", "", float(rows[i])),
                            (dataset_id, batch_id, at, column, "mean", "", float(centre)),
                            (dataset_id, batch_id, at, column, "std", "", spread),
                            (dataset_id, batch_id, at, column, "nulls", "", float(rows[i]) * 0.05),
                            (dataset_id, batch_id, at, column, "null_fraction", "", float(rng.normal(0.05, 0.005)))]
            categorical = {"predicted_class": ["buy", "no_buy"]} if kind == "model_output" else CATEGORIES
            for column, values in categorical.items():
                shares = rng.dirichlet(np.arange(len(values), 0, -1) * 40)
                for value, share in zip(values, shares):
                    metrics.append((dataset_id, batch_id, at, column, "freq", value, float(share * rows[i])))
                metrics += [(dataset_id, batch_id, at, column, "freq_other", "", 0.0),
                            (dataset_id, batch_id, at, column, "count", "", float(rows[i])),
                            (dataset_id, batch_id, at, column, "distinct", "", float(len(values))),
                            (dataset_id, batch_id, at, column, "null_fraction", "", 0.0)]
        db.executemany("INSERT INTO batches (id, dataset_id, partition, status, rows, columns, reason, source,"
                       " fingerprint, schema_fingerprint, arrived_at, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       batches)
        db.executemany('INSERT INTO metrics (dataset_id, batch_id, partition, "column", metric, "key", value)'
                       " VALUES (?,?,?,?,?,?,?)", metrics)
        db.executemany("INSERT INTO runs (id, dataset_id, status, \"trigger\", partition_from, partition_to,"
                       " progress_done, progress_total, requested_by, requested_at, started_at, finished_at,"
                       " inputs, stages, log) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
        counts["datasets"] += 1
        counts["batches"] += len(batches)
        counts["metrics"] += len(metrics)
        counts["runs"] += len(runs)
    alerts = []
    statuses = rng.choice(["open", "acknowledged", "resolved"], ALERTS, p=[0.2, 0.1, 0.7])
    resolutions = rng.choice(["auto", "false_positive", "fixed", "expected"], ALERTS, p=[0.6, 0.15, 0.15, 0.1])
    for i in range(ALERTS):
        dataset_id = int(rng.integers(1, DATASETS + 1))
        monitor = MONITORS[int(rng.integers(len(MONITORS)))]
        day = days[int(rng.integers(DAYS))]
        seen = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(18), dt.UTC).isoformat(sep=" ")
        status = str(statuses[i])
        column = monitor.split(":", 1)[1] if monitor.startswith(("nulls", "level", "categories")) else None
        alerts.append((f"{i:064x}", dataset_id, column, monitor, "anomalies", "warning", status,
                       str(resolutions[i]) if status == "resolved" else None, day.isoformat(),
                       float(rng.normal(100, 10)), 100.0, 80.0, 120.0, f"[bench] {monitor} on {day}",
                       json.dumps({"metric": "row_count"}), 1, seen, seen,
                       seen if status == "resolved" else None))
    db.executemany('INSERT INTO alerts (fingerprint, dataset_id, "column", monitor, detector, severity, status,'
                   ' resolution, partition, value, expected, lower, upper, message, evidence, occurrences,'
                   " first_seen_at, last_seen_at, resolved_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   alerts)
    counts["alerts"] = len(alerts)
    db.commit()
    db.close()
    save_config(MonitorsConfig(datasets=declared), settings.config_path)
    counts["build_seconds"] = round(time.perf_counter() - started, 1)
    counts["generator_version"] = GENERATOR_VERSION
    (home / "bench.json").write_text(json.dumps(counts))
    return counts


def _timed(app) -> float:
    started = time.perf_counter()
    app.run()
    return time.perf_counter() - started


def time_pages(repeat: int, pages: dict) -> dict:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    results = {}
    app = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=300)
    app.session_state["identity.name"] = app.session_state["identity.input"] = "bench"
    app.run()  # imports and the default page, once
    for label, (path, params) in pages.items():
        if not (ROOT / path).exists():
            continue
        cold, warm, problems = [], [], set()
        for _ in range(repeat):
            st.cache_data.clear()
            for key, value in params.items():
                app.query_params[key] = value
            app.switch_page(path)
            cold.append(_timed(app))
            warm.append(_timed(app))
            problems |= {str(e.value)[:200] for e in app.exception}
        results[label] = {"cold_median_s": round(statistics.median(cold), 3), "cold_max_s": round(max(cold), 3),
                          "warm_median_s": round(statistics.median(warm), 3), "warm_max_s": round(max(warm), 3),
                          "exceptions": sorted(problems)}
        print(f"{label:26s} cold {results[label]['cold_median_s']:6.3f} s (max {results[label]['cold_max_s']:6.3f})"
              f"   warm {results[label]['warm_median_s']:6.3f} s (max {results[label]['warm_max_s']:6.3f})"
              + (f"   EXCEPTION {sorted(problems)[0][:80]}" if problems else ""), flush=True)
    return results


def time_backtest(repeat: int) -> dict:
    """The monitors page's preview: one automatic volume monitor replayed over 90 days."""
    import streamlit as st

    from dashboard import services
    from monitors.config import MonitorConfig

    monitor = MonitorConfig(name="volume:anomalies", metric="row_count", detector="anomalies",
                            severity="critical").model_dump_json()
    times = []
    for _ in range(repeat):
        st.cache_data.clear()
        started = time.perf_counter()
        services.backtest_frame(_name(0), monitor, END - dt.timedelta(days=89), END)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3),
            "what": "volume:anomalies on 730 days of row counts, replayed over the last 90 partitions"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--rebuild", action="store_true", help="generate the store again")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pages", nargs="*", choices=list(PAGES), help="a subset of the pages")
    args = parser.parse_args(argv)
    marker = args.home / "bench.json"
    fresh = not marker.exists() or json.loads(marker.read_text()).get("generator_version") != GENERATOR_VERSION
    store = build(args.home) if args.rebuild or fresh else json.loads(marker.read_text())
    print(f"store: {store}", flush=True)
    os.environ["MONITORS_HOME"] = str(args.home)
    os.environ.pop("MONITORS_DB_URL", None)
    os.environ.pop("MONITORS_CONFIG", None)
    os.environ.pop("MONITORS_DASHBOARD_WORKER", None)
    pages = {k: v for k, v in PAGES.items() if not args.pages or k in args.pages}
    results = time_pages(args.repeat, pages)
    backtest = time_backtest(max(1, args.repeat // 2))
    print(f"backtest preview  {backtest['median_s']:.3f} s (max {backtest['max_s']:.3f}): {backtest['what']}")
    over = [label for label, r in results.items() if r["cold_median_s"] >= 1.0]
    print("every page under 1 s (cold median)" if not over else f"over 1 s (cold median): {', '.join(over)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "store": store, "repeat": args.repeat, "pages": results, "backtest_preview": backtest,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
