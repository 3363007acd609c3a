"""The command line: `python -m monitors --help`.

Listing commands take `--json` and then print one JSON document on stdout and nothing else.
Exit codes: 0 done, 2 usage error or unknown dataset, 3 batch quarantined, 4 the store cannot
be used (unreachable, read-only, corrupt, full, or its file deleted: one line on stderr), 141
the reader of stdout went away (`| head`), as for any command SIGPIPE ends.

A command's implementation is imported by its handler, when it runs: `--help` and the
listings then start without the pipeline (pyarrow, the detectors, the scheduler).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from detectors.numbers import fmt_number
from monitors.cli import (
    alerts as cli_alerts,
)
from monitors.cli import (
    config as cli_config,
)
from monitors.cli import (
    gates as cli_gates,
)
from monitors.cli import (
    runs as cli_runs,
)
from monitors.cli import (
    stages as cli_stages,
)
from monitors.cli.io import EXIT_USAGE, date_argument, emit
from monitors.datasets import UnknownDataset, find_dataset
from monitors.settings import Settings, load_settings
from store import queries
from store.engine import describe_fault, open_store, wait_for_store
from store.models import Batch

EXIT_QUARANTINED = 3
EXIT_STORE = 4
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command ended by SIGPIPE, as `yes | head` is
ROOT = Path(__file__).resolve().parents[2]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m monitors",
                                     description="Data-quality and model monitoring for daily ML pipelines.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="land the demo's datasets and incidents")
    demo.add_argument("--days", type=int, default=120, help="days of history (default 120)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument("--end", type=date_argument, help="last partition (default: yesterday, UTC)")

    ingest = commands.add_parser("ingest", help="land one batch file")
    ingest.add_argument("path", type=Path)
    ingest.add_argument("--dataset", required=True)
    ingest.add_argument("--partition", type=date_argument, help="default: the date in the file name")
    ingest.add_argument("--create", action="store_true",
                        help="make an unknown dataset, its contract inferred from this batch")
    ingest.add_argument("--json", action="store_true")

    datasets = commands.add_parser("datasets", help="the datasets")
    datasets_cmd = datasets.add_subparsers(dest="action", required=True)
    datasets_cmd.add_parser("list", help="list datasets").add_argument("--json", action="store_true")

    batches = commands.add_parser("batches", help="the batches")
    batches_cmd = batches.add_subparsers(dest="action", required=True)
    batches_list = batches_cmd.add_parser("list", help="list batches")
    batches_list.add_argument("--dataset")
    batches_list.add_argument("--json", action="store_true")

    metrics = commands.add_parser("metrics", help="a stored metric as a time series")
    metrics.add_argument("--dataset", required=True)
    metrics.add_argument("--column", help="omit for table-level metrics (row_count, ...)")
    metrics.add_argument("--metric", required=True)
    metrics.add_argument("--key", default="", help="the category, for freq")
    metrics.add_argument("--json", action="store_true")

    backtest = commands.add_parser(
        "backtest", help="the alerts a monitor would have raised over stored history, or "
                         "the alerts a config version gains and loses against another")
    backtest.add_argument("--monitor", help="its name, e.g. nulls:income (with --config: "
                                            "compare that monitor only)")
    backtest.add_argument("--dataset", help="needed with --config, and when the monitor's "
                                            "name exists on several datasets")
    backtest.add_argument("--config", help="compare this config version (a number, a hash, or "
                                           "'current': the file as it is now) ...")
    backtest.add_argument("--against", help="... with this one (default: the version before it)")
    backtest.add_argument("--from", dest="start", type=date_argument, required=True)
    backtest.add_argument("--to", dest="end", type=date_argument, required=True)
    backtest.add_argument("--json", action="store_true")

    performance = commands.add_parser(
        "performance", help="a model's realised (and estimated) performance per partition")
    performance.add_argument("--dataset", required=True, help="a model output with labels")
    performance.add_argument("--version", help="one model version (default: every one, and all together)")
    performance.add_argument("--json", action="store_true")

    serve = commands.add_parser("serve", help="the dashboard (lands the demo first on an empty store)")
    serve.add_argument("--port", type=int, default=8501)
    cli_alerts.add_commands(commands)
    cli_runs.add_commands(commands)
    cli_gates.add_commands(commands)
    cli_config.add_commands(commands)
    cli_stages.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    try:
        key = (args.command, getattr(args, "action", None))
        if key in cli_config.STORELESS:  # writes nothing, not even a new store
            return COMMANDS[key](args, settings, None)
        # a worker is a service: it waits for its database; a command says it is unreachable
        _, sessions = (wait_for_store if args.command == "worker" else open_store)(settings.db_url)
        handler = COMMANDS[key]
        code = handler(args, settings, sessions)
        sys.stdout.flush()  # a reader gone (`| head`) shows up here, not at exit
        return code
    except BrokenPipeError:
        # the reader stopped reading: what it took is all it wanted, and the rest goes
        # nowhere (not to a second BrokenPipeError when Python flushes at exit)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    # NotFound and the store's UnknownDataset are LookupErrors; Refused, Invalid and the plain
    # ValueErrors of older code are ValueErrors: one line on stderr, exit 2
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        # a fault of the store (unreachable, read-only, corrupt, full, file gone) is one line;
        # anything else is a bug and keeps its traceback
        fault = describe_fault(exc, settings.db_url)
        if fault is None:
            raise
        print(f"error: {fault}", file=sys.stderr)
        return EXIT_STORE


def _demo(args, settings: Settings, sessions) -> int:
    from monitors.demo import land_demo

    started = time.perf_counter()

    def progress(done: int, total: int, day: str) -> None:
        if done == total or done % 10 == 0:
            print(f"demo: {done}/{total} days landed (up to {day})", file=sys.stderr)

    runs = land_demo(sessions, settings, days=args.days, seed=args.seed, end=args.end,
                     progress=progress)
    print(f"demo: {args.days} days delivered and {runs} runs done in "
          f"{time.perf_counter() - started:.1f} s; ground truth in "
          f"{settings.home / 'demo' / 'incidents.json'}", file=sys.stderr)
    return 0


def _ingest(args, settings: Settings, sessions) -> int:
    if not args.path.is_file():
        print(f"error: no such file: {args.path}", file=sys.stderr)
        return EXIT_USAGE
    from monitors.catalog import sync_datasets
    from monitors.config import load_config
    from monitors.errors import Invalid
    from monitors.intake.file_roots import inside_roots
    from monitors.intake.ingest import (
        find_or_create_dataset,
        ingest_file,
        partition_from_name,
    )
    from monitors.intake.readers import ContractViolation

    # OutsideRoots is a usage error and stores nothing; the resolved path is what was
    # checked, so it is what gets read
    path = inside_roots(args.path, settings.file_roots)
    partition = args.partition or partition_from_name(args.path)
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path, settings), settings.home)
        created = False
        try:
            dataset = find_dataset(session, args.dataset)
        except UnknownDataset:
            if not args.create:
                raise
            try:
                dataset, created = find_or_create_dataset(session, args.dataset, path,
                                                          limits=settings.limits)
            except ContractViolation as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_USAGE
        outcome = ingest_file(session, dataset, path, partition, limits=settings.limits)
        if created and outcome.status == "quarantined":
            # a contract its own first batch breaks describes nothing: the dataset is not kept
            raise Invalid(f"{args.dataset}: the first batch breaks the contract inferred from "
                          f"it ({outcome.reason}); nothing was created")
    if created:
        # said, not done silently: from now on the worker looks for its files on a
        # schedule and judges their lateness (on stderr, so --json stays one document)
        print(f"created dataset {dataset.name}: {len(dataset.contract.get('columns', []))} "
              f"columns inferred from this batch; new files are looked for in "
              f"{dataset.source} on schedule '{dataset.schedule}' (cron, UTC), due "
              f"{dataset.deadline_hours:g} h after their day ends; declare it in "
              f"{settings.config_path.name} to change either", file=sys.stderr)
    document = {"dataset": outcome.dataset, "partition": outcome.partition.isoformat(),
                "status": outcome.status, "batch_id": outcome.batch_id, "rows": outcome.rows,
                "reason": outcome.reason}
    emit(args, document, [f"{outcome.dataset} {outcome.partition}: {outcome.status}"
                            + (f" ({outcome.rows} rows)" if outcome.rows else "")])
    if outcome.status == "quarantined":
        print(f"quarantined: {outcome.reason}", file=sys.stderr)
        return EXIT_QUARANTINED
    return 0


def _datasets_list(args, settings: Settings, sessions) -> int:
    # loaded when this listing runs, not by every command
    from monitors.credentials import mask_url
    from monitors.intake.delivery import expected_partition, list_partition_deliveries
    from monitors.intake.freshness import list_late_partitions

    now = dt.datetime.now(dt.UTC)
    today = now.date()
    with sessions() as session:
        # the partition due now (yesterday's): arrived, late, quarantined, missing or pending
        deliveries = {d.dataset: d.to_json() for d in list_partition_deliveries(
            session, expected_partition(today), now)}
        documents = []
        for d in queries.list_datasets(session):
            partitions = queries.list_partitions(session, d.id)
            documents.append({
                "name": d.name, "kind": d.kind, "format": d.format,
                # a SQL source written with its password shows without it
                "source": mask_url(d.source) if d.format == "sql" else d.source,
                "partition_key": d.partition_key, "schedule": d.schedule,
                "deadline_hours": d.deadline_hours, "contract": d.contract,
                "batches": len(partitions),
                "first_partition": partitions[0].isoformat() if partitions else None,
                "last_partition": partitions[-1].isoformat() if partitions else None,
                "missing_partitions": [p.isoformat() for p in queries.list_missing_partitions(
                    session, d.id, today - dt.timedelta(days=1))],
                "late_partitions": [p.isoformat() for p in list_late_partitions(session, d)],
                "delivery": deliveries.get(d.name),
                "upstream": list(d.upstream or []),
            })
    emit(args, documents, [f"{d['name']:<24} {d['kind']:<13} {d['format']:<8} {d['batches']:>5} batches "
                             f"{d['first_partition']} .. {d['last_partition']}" for d in documents])
    return 0


def _batches_list(args, settings: Settings, sessions) -> int:
    with sessions() as session:
        dataset_id = find_dataset(session, args.dataset).id if args.dataset else None
        documents = [batch_summary(b, name) for b, name in queries.list_batches(session, dataset_id)]
    emit(args, documents, [f"{d['dataset']:<24} {d['partition']} {d['status']:<12} {d['rows'] or '':>7} "
                             f"{d['reason'] or ''}" for d in documents])
    return 0


def _metrics(args, settings: Settings, sessions) -> int:
    with sessions() as session:
        dataset = find_dataset(session, args.dataset)
        series = queries.read_metric_series(session, dataset.id, args.metric, args.column, args.key)
    if series.empty:
        print(f"error: no values of metric {args.metric!r} for {args.dataset}"
              + (f".{args.column}" if args.column else " (table level)"), file=sys.stderr)
        return EXIT_USAGE
    points = [{"partition": p.date().isoformat(), "value": v} for p, v in series.items()]
    emit(args, {"dataset": args.dataset, "column": args.column, "metric": args.metric,
                  "key": args.key, "points": points},
           [f"{p['partition']} {fmt_number(p['value'])}" for p in points])
    return 0


def _backtest(args, settings: Settings, sessions) -> int:
    from monitors.config import load_config
    from monitors.judge.backtest import backtest, find_monitor

    if args.config is not None:
        return _backtest_configs(args, settings, sessions)
    if args.monitor is None or args.against is not None:
        print("error: backtest needs --monitor, or --config (and --dataset) to compare "
              "config versions; --against goes with --config", file=sys.stderr)
        return EXIT_USAGE
    config = load_config(settings.config_path)
    with sessions() as session:
        dataset, spec = find_monitor(session, config, args.monitor, args.dataset)
        alerts = backtest(session, dataset, spec, args.start, args.end, config=config)
    weeks: dict[str, int] = {}
    for alert in alerts:
        weeks[alert.week] = weeks.get(alert.week, 0) + 1
    document = {"dataset": dataset.name, "monitor": spec.name, "from": args.start.isoformat(),
                "to": args.end.isoformat(), "per_week": weeks,
                "alerts": [{**asdict(a), "partition": a.partition.isoformat()} for a in alerts]}
    lines = [f"{a.partition} {a.monitor} {a.message}" for a in alerts]
    lines.append(f"{len(alerts)} alert(s) over {len(weeks)} week(s) with any; real alerts untouched")
    emit(args, document, lines)
    return 0


def _backtest_configs(args, settings: Settings, sessions) -> int:
    from monitors.judge.backtest import compare_configs

    if args.dataset is None:
        print("error: backtest --config needs --dataset", file=sys.stderr)
        return EXIT_USAGE
    with sessions() as session:
        comparison = compare_configs(session, settings, find_dataset(session, args.dataset),
                                     args.config, args.against, args.start, args.end,
                                     monitor=args.monitor)
    c = comparison

    def version(label) -> str:
        return f"v{label}" if isinstance(label, int) else str(label)

    lines = [f"backtest of {c.dataset} {c.start}..{c.end}: config {version(c.config)} "
             f"against {version(c.against)}"]
    lines += [f"  config: {change}" for change in c.changes] or ["  the two versions set "
                                                                 "this dataset alike"]
    for side, sign in (("gained", "+"), ("lost", "-")):
        lines += [f"{sign} {a.partition} {a.monitor} {a.message}" for a in getattr(c, side)]
    lines += [f"  {name}: {n['gained']} gained, {n['lost']} lost"
              for name, n in c.per_monitor().items()]
    lines.append(f"{len(c.gained)} alert(s) gained, {len(c.lost)} lost, over "
                 f"{len(c.compared)} monitor(s) set differently; real alerts untouched")
    emit(args, c.to_json(), lines)
    return 0


def _performance(args, settings: Settings, sessions) -> int:
    from monitors.judge.performance import performance_report

    with sessions() as session:
        rows = performance_report(session, find_dataset(session, args.dataset), args.version)
    emit(args, rows, [f"{r['partition']} {r['model_version'] or 'all':<8} "
                      + " ".join(f"{k}={r[k]:.3f}" for k in ("auc", "brier", "ece", "coverage")
                                 if r[k] is not None)
                      + (f" estimated_auc={r['estimated_auc']:.3f}" if r["estimated_auc"] is not None else "")
                      for r in rows])
    return 0


def _serve(args, settings: Settings, sessions) -> int:
    with sessions() as session:
        empty = not queries.list_datasets(session)
    if empty:
        print("the store is empty: landing the demo first", file=sys.stderr)
        _demo(argparse.Namespace(days=120, seed=7, end=None), settings, sessions)
    # the one-command dashboard also executes what people queue from it (reruns, backfills)
    os.environ.setdefault("MONITORS_DASHBOARD_WORKER", "1")
    os.execv(sys.executable, serve_command(args.port))
    return 0  # not reached


def serve_command(port: int, address: str | None = None) -> list[str]:
    """The Streamlit command line `serve` runs (the browser tests start the same one)."""
    return [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"),
            f"--server.port={port}", "--browser.gatherUsageStats=false",
            # no Deploy button: this dashboard is deployed where it runs
            "--client.toolbarMode=minimal",
            # a served dashboard is not being edited: no watching of every imported
            # module for changes (each new session registered them again), and no
            # attempt to open a browser on the server
            "--server.fileWatcherType=none", "--server.headless=true",
            *([f"--server.address={address}"] if address else [])]


def batch_summary(batch: Batch, dataset_name: str) -> dict[str, Any]:
    """A batch as `batches list` shows it (DESIGN.md's fields, then provenance)."""
    return {"dataset": dataset_name, "partition": batch.partition.isoformat(),
            "status": batch.status, "rows": batch.rows, "reason": batch.reason,
            "id": batch.id, "source": batch.source, "fingerprint": batch.fingerprint,
            "arrived_at": batch.arrived_at.isoformat(), "ingested_at": batch.ingested_at.isoformat()}


COMMANDS = {
    ("demo", None): _demo,
    ("ingest", None): _ingest,
    ("datasets", "list"): _datasets_list,
    ("batches", "list"): _batches_list,
    ("metrics", None): _metrics,
    ("backtest", None): _backtest,
    ("performance", None): _performance,
    ("serve", None): _serve,
    **cli_alerts.COMMANDS,
    **cli_runs.COMMANDS,
    **cli_gates.COMMANDS,
    **cli_config.COMMANDS,
    **cli_stages.COMMANDS,
}
