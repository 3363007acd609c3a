"""Benchmark of realised performance (issue 15): a day's predictions joined with their labels
and scored, at 1M and 10M rows.

The predictions (id, score, model_version: two versions) and their labels (id, bought; 80%
of the predictions labelled, in another order) are written once, seeded, as Parquet into
bench/data/ (git ignores it). Two measurements of the same rows, each in its own child
process (wall and CPU time of the work itself, not imports; peak RSS from os.wait4):

- `ours`: what landing a labels batch does: monitors.intake.labels.resolve (read both files through
  the ingestion readers, check the keys, join in Arrow) and monitors.judge.performance's figures
  per partition and model version (performance_rows: every figure, the reliability curve,
  the score histograms) against a throwaway SQLite store that holds the two datasets;
- `pandas`: the same rows read whole by pandas, pd.merge, and scikit-learn's metrics (AUC,
  average precision, Brier, log loss, precision/recall/F1, calibration_curve) for all
  versions together and each version: what one would write in a notebook.

Both must give the same AUC, Brier and ECE (checked). The median of --repeat runs is kept.

    python bench/performance.py                   # 1M and 10M rows
    python bench/performance.py --rows 1000000
    python bench/performance.py --demo-seeds 7 8 9   # and the 120-day demo with three seeds
Figures: bench/results/performance.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATA = ROOT / "bench" / "data"
RESULTS = ROOT / "bench" / "results" / "performance.json"
GENERATOR_VERSION = 1
BLOCK = 1_000_000
PARTITION = "2026-03-02"


def files(rows: int) -> tuple[Path, Path]:
    stem = DATA / f"performance_v{GENERATOR_VERSION}_{rows}"
    return stem.with_name(stem.name + "_scores.parquet"), stem.with_name(stem.name + "_labels.parquet")


def generate(rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    scores_path, labels_path = files(rows)
    if scores_path.exists() and labels_path.exists():
        return scores_path, labels_path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(15)
    scores_schema = pa.schema([("id", pa.int64()), ("score", pa.float64()),
                               ("model_version", pa.string())])
    labels_schema = pa.schema([("id", pa.int64()), ("bought", pa.int64())])
    with pq.ParquetWriter(scores_path, scores_schema) as scores, \
            pq.ParquetWriter(labels_path, labels_schema) as labels:
        for start in range(0, rows, BLOCK):
            n = min(BLOCK, rows - start)
            ids = np.arange(start, start + n, dtype=np.int64)
            logit = rng.normal(-1.0, 1.4, n)
            score = 1 / (1 + np.exp(-logit))
            version = np.where(ids % 3 == 0, "v2", "v1")
            scores.write_table(pa.table({"id": ids, "score": score.round(6), "model_version": version},
                                        schema=scores_schema), row_group_size=250_000)
            bought = (rng.random(n) < score).astype(np.int64)
            keep = rng.random(n) < 0.8
            order = rng.permutation(int(keep.sum()))
            labels.write_table(pa.table({"id": ids[keep][order], "bought": bought[keep][order]},
                                        schema=labels_schema), row_group_size=250_000)
    return scores_path, labels_path


# ---- the measured work, run in a child process --------------------------------------------


def ours(rows: int) -> dict:
    import datetime as dt

    import sklearn.metrics  # noqa: F401  imported before the clock starts, as the baseline's

    from monitors.catalog import sync_datasets
    from monitors.config import parse_config
    from monitors.contract import Contract
    from monitors.intake.labels import read_table, resolve
    from monitors.judge.performance import performance_rows
    from monitors.settings import Limits
    from store import queries
    from store.engine import open_store
    from store.models import Batch, BatchStatus

    scores_path, labels_path = files(rows)
    config = parse_config(json.dumps({"datasets": [
        {"name": "scores", "kind": "model_output", "format": "parquet", "source": str(DATA),
         "contract": {"columns": [{"name": "id", "type": "integer", "nullable": False},
                                  {"name": "score", "type": "float", "nullable": False},
                                  {"name": "model_version", "type": "string"}]},
         "labels": {"dataset": "labels", "key": "id", "label": "bought"}},
        {"name": "labels", "kind": "labels", "format": "parquet", "source": str(DATA),
         "deadline_hours": 174,
         "contract": {"columns": [{"name": "id", "type": "integer", "nullable": False},
                                  {"name": "bought", "type": "integer"}]}}]}))
    partition = dt.date.fromisoformat(PARTITION)
    limits = Limits(decompressed_bytes=1 << 40)
    with tempfile.TemporaryDirectory() as home:
        engine, sessions = open_store(f"sqlite:///{home}/bench.db")
        with sessions.begin() as session:
            sync_datasets(session, config, Path(home))
            model = queries.get_dataset(session, "scores")
            session.add(Batch(dataset_id=model.id, partition=partition, status=BatchStatus.ingested,
                              rows=rows, source=str(scores_path), fingerprint="bench",
                              arrived_at=dt.datetime.now(dt.UTC)))
        with sessions() as session:
            labels = queries.get_dataset(session, "labels")
            contract = Contract.model_validate(labels.contract)
            started, cpu = time.perf_counter(), time.process_time()
            table = read_table(labels_path, "parquet", contract, limits, ["id", "bought"])
            joined, = resolve(session, labels, partition, table, limits)
            stored = performance_rows(joined)
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        engine.dispose()
    figures = {(metric, key): value for _, metric, key, value in stored}
    return {"wall_s": wall, "cpu_s": cpu, "metric_rows": len(stored),
            "auc": figures[("auc", "")], "brier": figures[("brier", "")], "ece": figures[("ece", "")]}


def baseline(rows: int) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn import metrics
    from sklearn.calibration import calibration_curve

    scores_path, labels_path = files(rows)
    started, cpu = time.perf_counter(), time.process_time()
    joined = pd.read_parquet(scores_path).merge(pd.read_parquet(labels_path), on="id", how="inner")
    figures = {}
    for version in ("", "v1", "v2"):
        part = joined if not version else joined[joined["model_version"] == version]
        y, score = part["bought"].to_numpy(), part["score"].to_numpy()
        prob_true, prob_pred = calibration_curve(y, score, n_bins=10)
        ids = np.searchsorted(np.linspace(0, 1, 11)[1:-1], score)
        counts = np.bincount(ids, minlength=10)
        figures[version] = {
            "auc": metrics.roc_auc_score(y, score),
            "average_precision": metrics.average_precision_score(y, score),
            "brier": metrics.brier_score_loss(y, score),
            "log_loss": metrics.log_loss(y, score),
            "prf": metrics.precision_recall_fscore_support(y, score >= 0.5, average="binary"),
            "ece": float(np.sum(counts[counts > 0] / len(y) * np.abs(prob_true - prob_pred))),
        }
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"wall_s": wall, "cpu_s": cpu, "auc": figures[""]["auc"],
            "brier": figures[""]["brier"], "ece": figures[""]["ece"]}


# ---- the demo: what the labels catch, over several seeds -------------------------------------


def demo_findings(seed: int, days: int) -> dict:
    """Land the demo (its own MONITORS_HOME and SQLite store) and read what its labelled
    incidents raised: the concept change's performance alert and when it was seen, the
    calibration break's Brier or ECE alert, the late labels' freshness alert, the versions
    side by side, and the estimate's error against the realised AUC."""
    import datetime as dt

    import pandas as pd

    from monitors.demo import LABEL_DELAY_DAYS, OUTCOMES, SCORES, land_demo
    from monitors.judge.performance import performance_frame
    from monitors.lifecycle import alerts as lifecycle
    from monitors.settings import load_settings
    from store import queries
    from store.engine import open_store

    home = Path(tempfile.mkdtemp(prefix="performance-demo-"))
    settings = load_settings({"MONITORS_HOME": str(home)})
    engine, sessions = open_store(settings.db_url)
    started = time.perf_counter()
    land_demo(sessions, settings, days=days, seed=seed, end=dt.date(2026, 6, 30))
    seconds = time.perf_counter() - started
    truth = {i["kind"]: dt.date.fromisoformat(i["partition"])
             for i in json.loads((home / "demo" / "incidents.json").read_text())
             if i["dataset"] in (SCORES, OUTCOMES)}
    with sessions() as session:
        raised = lifecycle.list_alerts(session, dataset=[SCORES, OUTCOMES])
        model = queries.get_dataset(session, SCORES)
        frame = performance_frame(session, model)
        labels = queries.get_dataset(session, OUTCOMES)
        arrivals = {b.partition: b.arrived_at for b, _ in queries.list_batches(session, labels.id)
                    if b.status == "ingested"}
    engine.dispose()

    def alerts_on(prefixes, partitions):
        return [a for a in raised if a["monitor"].startswith(prefixes)
                and dt.date.fromisoformat(a["partition"]) in partitions]

    def window(kind, length):
        return {truth[kind] + dt.timedelta(days=d) for d in range(length)}

    concept = truth["concept_change"]
    realised = alerts_on(("performance:auc", "performance:brier", "performance:ece"), {concept})
    seen = min((dt.datetime.fromisoformat(a["first_seen_at"]) for a in realised), default=None)
    landed = arrivals.get(concept)
    flagged_early = [a for a in alerts_on("performance:estimated_auc_drop", window("concept_change", 5))
                     if dt.datetime.fromisoformat(a["first_seen_at"])
                     < arrivals.get(dt.date.fromisoformat(a["partition"]), dt.datetime.max.replace(tzinfo=dt.UTC))]
    overall = frame[frame["model_version"].isna()].copy()
    overall["day"] = overall["partition"].dt.date
    disturbed = window("concept_change", 5) | window("calibration_break", 3)
    later = min(truth[k] for k in ("level_shift", "score_drift") if k in truth)
    clean = overall[~overall["day"].isin(disturbed) & (overall["day"] < later)].dropna(
        subset=["auc", "estimated_auc"])
    inside = clean[(clean["auc"] >= clean["estimated_auc_lower"])
                   & (clean["auc"] <= clean["estimated_auc_upper"])]
    versions = frame[frame["model_version"].notna() & frame["labelled"]]
    return {
        "seed": seed, "days": days, "demo_seconds": round(seconds, 1),
        "concept_change": {
            "partition": concept.isoformat(),
            "performance_alerts": sorted({a["monitor"] for a in realised}),
            "labels_landed_at": landed.isoformat() if landed else None,
            "first_alert_at": seen.isoformat() if seen else None,
            "alert_on_landing_day": bool(seen and landed and seen.date() == landed.date()),
            "estimate_flagged_before_labels": f"{len({a['partition'] for a in flagged_early})}/5 days"},
        "calibration_break": sorted({a["monitor"] for a in alerts_on(
            ("performance:brier", "performance:ece"), window("calibration_break", 3))}),
        "late_labels": sorted({a["monitor"] for a in raised if a["dataset"] == OUTCOMES
                               and a["partition"] == truth["late_labels"].isoformat()}),
        "versions": {v: {"first_partition": rows["partition"].min().date().isoformat(),
                         "labelled_partitions": int(len(rows)),
                         "mean_auc": round(float(rows["auc"].mean()), 4)}
                     for v, rows in versions.groupby("model_version")},
        "estimate_mae_auc_clean": round(float((clean["auc"] - clean["estimated_auc"]).abs().mean()), 4),
        "estimate_band_coverage_clean": f"{len(inside)}/{len(clean)}",
        "label_delay_days": LABEL_DELAY_DAYS,
    }


# ---- the parent: children, medians, results -------------------------------------------------


def measure(kind: str, rows: int) -> dict:
    process = subprocess.Popen([sys.executable, __file__, "--child", kind, "--rows", str(rows)],
                               stdout=subprocess.PIPE, cwd=ROOT)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"{kind} at {rows:,} rows failed (exit {process.returncode})")
    result = json.loads(output)
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)  # KiB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "pandas"])
    parser.add_argument("--demo-seeds", type=int, nargs="*", default=[],
                        help="also land the demo with each seed and report what the labels caught")
    parser.add_argument("--demo-days", type=int, default=120)
    args = parser.parse_args()
    if args.child:
        work = ours if args.child == "ours" else baseline
        print(json.dumps(work(args.rows[0])))
        return
    demo = [demo_findings(seed, args.demo_days) for seed in args.demo_seeds]
    if not demo and RESULTS.exists():  # the demo's findings of an earlier run are kept
        demo = json.loads(RESULTS.read_text()).get("demo", [])
    for found in demo:
        print(json.dumps(found), file=sys.stderr)
    results = []
    for rows in args.rows or [1_000_000, 10_000_000]:
        generate(rows)
        runs = {"ours": [], "pandas": []}
        for _ in range(args.repeat):
            for kind in runs:  # alternating, so a busy moment of the machine hits both
                runs[kind].append(measure(kind, rows))
        row = {"rows": rows}
        for kind, done in runs.items():
            row[kind] = {name: round(statistics.median(r[name] for r in done), 3)
                         for name in ("wall_s", "cpu_s", "peak_rss_mib")}
            row[kind].update({name: done[0][name] for name in ("auc", "brier", "ece")})
        for name in ("auc", "brier", "ece"):
            gap = abs(row["ours"][name] - row["pandas"][name])
            if gap > 1e-9:
                raise SystemExit(f"{name} differs at {rows:,} rows: {row['ours'][name]} vs "
                                 f"{row['pandas'][name]}")
        results.append(row)
        print(f"{rows:>11,} rows: ours {row['ours']['wall_s']:.2f} s wall, "
              f"{row['ours']['cpu_s']:.2f} s CPU, {row['ours']['peak_rss_mib']:.0f} MiB; "
              f"pandas + scikit-learn {row['pandas']['wall_s']:.2f} s wall, "
              f"{row['pandas']['cpu_s']:.2f} s CPU, {row['pandas']['peak_rss_mib']:.0f} MiB",
              file=sys.stderr)
    if len(results) > 1:
        first, last = results[0], results[-1]
        scale = last["rows"] / first["rows"]
        for kind in ("ours", "pandas"):
            print(f"{kind}: {last[kind]['cpu_s'] / first[kind]['cpu_s']:.1f}x the CPU for "
                  f"{scale:.0f}x the rows", file=sys.stderr)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "command": "python bench/performance.py", "repeat": args.repeat,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "results": results, "demo": demo}, indent=2) + "\n")


if __name__ == "__main__":
    main()
