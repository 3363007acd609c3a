"""The run commands: `run`, `runs list|cancel`, `worker` (wired into `python -m monitors`).

`python -m monitors.cli.runs ...` runs them on their own, with the same exit codes:
0 done, 1 the run executed here (`run --now`) failed, 2 usage error or unknown dataset.
"""
from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import sys
from typing import Any

from monitors.cli.io import EXIT_USAGE, count_argument, date_argument, emit
from monitors.datasets import find_dataset
from monitors.pipeline import queue
from monitors.settings import Settings, load_settings
from store.engine import open_store
from store.models import Dataset, RunStatus

EXIT_FAILED = 1


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        return "cli"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="queue a run or a backfill (--now: execute it here)")
    run.add_argument("--dataset", required=True)
    when = run.add_mutually_exclusive_group(required=True)
    when.add_argument("--date", type=date_argument, help="one partition")
    when.add_argument("--from", dest="date_from", type=date_argument, help="first partition (with --to)")
    run.add_argument("--to", dest="date_to", type=date_argument, help="last partition (with --from)")
    run.add_argument("--now", action="store_true",
                     help="execute it in this process and return when it is done (exit 1 if it failed)")
    run.add_argument("--by", default=_who(), help="who asks (default: the login name)")
    run.add_argument("--json", action="store_true")
    run.add_argument("--executor", help=argparse.SUPPRESS)

    runs = subparsers.add_parser("runs", help="the run queue and history")
    runs_cmd = runs.add_subparsers(dest="action", required=True)
    runs_list = runs_cmd.add_parser("list", help="list runs, latest first")
    runs_list.add_argument("--dataset")
    runs_list.add_argument("--status", choices=[s.value for s in RunStatus])
    runs_list.add_argument("--limit", type=count_argument, default=200)
    runs_list.add_argument("--json", action="store_true")
    runs_show = runs_cmd.add_parser(
        "show", help="a run with its input files' fingerprints, config version and code version")
    runs_show.add_argument("id", type=int)
    runs_show.add_argument("--json", action="store_true")
    runs_replay = runs_cmd.add_parser(
        "replay", help="judge a past run's partitions again in memory and compare its findings "
                       "(touches no alert)")
    runs_replay.add_argument("id", type=int)
    runs_replay.add_argument("--config", help="replay under this config version (or 'current': "
                                              "the file now) instead of the run's own")
    runs_replay.add_argument("--json", action="store_true")
    runs_cancel = runs_cmd.add_parser("cancel", help="cancel a queued run")
    runs_cancel.add_argument("id", type=count_argument)
    runs_cancel.add_argument("--by", required=True, help="who cancels (kept in the run's log)")
    runs_cancel.add_argument("--json", action="store_true")

    worker = subparsers.add_parser("worker", help="run the scheduler and execute queued runs")
    worker.add_argument("--once", action="store_true", help="drain the queue, then exit")
    worker.add_argument("--lease-seconds", type=float, default=60.0,
                        help="a run whose worker is silent this long is failed and re-queued (default 60)")
    worker.add_argument("--poll-seconds", type=float, default=2.0, help="queue poll interval (default 2)")
    worker.add_argument("--parallel", type=int, default=2,
                        help="runs executed at once, of different datasets (default 2)")
    worker.add_argument("--no-schedules", action="store_true",
                        help="only execute requests; leave the cron schedules to another worker")
    worker.add_argument("--executor", help=argparse.SUPPRESS)


def _line(run: dict[str, Any]) -> str:
    span = run["partition_from"] if run["partition_from"] == run["partition_to"] else \
        f"{run['partition_from']}..{run['partition_to']}"
    progress = f"{run['progress_done']}/{run['progress_total']}"
    return (f"{run['id']:>6} {run['dataset']:<24} {span:<23} {run['status']:<10} {run['trigger']:<9} "
            f"{progress:>7} {run['finished_at'] or run['started_at'] or run['requested_at']}"
            + (f"  {run['error']}" if run["error"] else ""))


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _run(args, settings: Settings, sessions) -> int:
    # imported here, as in every handler: a command loads what it runs, and no more
    from monitors.catalog import sync_datasets
    from monitors.config import load_config

    if args.date is not None:
        first = last = args.date
        trigger = queue.RunTrigger.manual
    else:
        if args.date_to is None:
            raise ValueError("--from needs --to")
        first, last = args.date_from, args.date_to
        trigger = queue.RunTrigger.backfill if first != last else queue.RunTrigger.manual
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path, settings), settings.home)
        dataset = find_dataset(session, args.dataset)
        run = queue.request_run(session, dataset, first, last, trigger=trigger, by=args.by)
        run_id, dataset_id = run.id, dataset.id
    if args.now:
        from monitors.pipeline.worker import Worker

        _logging()
        worker = Worker(sessions, settings, executor=args.executor, schedules=False, max_parallel=1)
        with worker.stop_on_signals():
            worker.drain(dataset_id=dataset_id, until_run=run_id)
    with sessions() as session:
        # a run whose worker died is carried on by its re-queued copy: report that one
        document = queue.run_summary(queue.latest_attempt(session, run_id), args.dataset)
    emit(args, document, [_line(document)])
    if args.now and document["status"] != RunStatus.succeeded:
        print(f"run {document['id']} {document['status']}: {document['error'] or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_FAILED
    return 0


def _runs_list(args, settings: Settings, sessions) -> int:
    with sessions() as session:
        if args.dataset:
            find_dataset(session, args.dataset)  # an unknown name is a usage error, not "(none)"
        documents = queue.list_runs(session, args.dataset, args.status, limit=args.limit)
    emit(args, documents, [_line(d) for d in documents])
    return 0


def _runs_show(args, settings: Settings, sessions) -> int:
    from monitors.judge.provenance import run_details

    with sessions() as session:
        document = run_details(session, args.id)
    version = document["config_version"]
    lines = [_line(document),
             f"config: v{version} ({document['config_hash']}, introduced by "
             f"{document['config_introduced_by']})" if version is not None
             else f"config: {document['config_hash'] or 'not recorded'}",
             f"code:   {document['code_version'] or 'not recorded'}",
             f"inputs: {len(document['inputs'])} batch(es), {document['findings']} finding(s)"]
    for item in document["inputs"]:
        lines.append(f"  {item['partition']} {item['fingerprint']} {item['source'] or '(gone)'}"
                     + ("" if item["still_in_force"] else
                        f"  [re-delivered since: now {item['in_force_fingerprint'] or 'none'}]"))
    emit(args, document, lines)
    return 0


def _runs_replay(args, settings: Settings, sessions) -> int:
    from monitors.judge.replay import replay_run

    with sessions() as session:
        replay = replay_run(session, settings, args.id, config=args.config)
    head = (f"run {replay.run_id} ({replay.dataset}, {replay.partitions[0]}..{replay.partitions[-1]}) "
            f"under config v{replay.run_config_version}, replayed under "
            f"{'v' if isinstance(replay.replay_config_version, int) else ''}"
            f"{replay.replay_config_version}: ")
    if replay.identical:
        lines = [head + f"identical ({replay.findings} finding(s))"]
    else:
        lines = [head + f"{len(replay.differences)} difference(s)"]
        for d in replay.differences:
            shown = (d.after or d.before)["detail"]
            lines.append(f"  {d.partition} {d.monitor}: {d.change}: {shown}")
            lines += [f"    because {cause}" for cause in d.causes]
    emit(args, replay.to_json(), lines)
    return 0


def _runs_cancel(args, settings: Settings, sessions) -> int:
    with sessions.begin() as session:
        run = queue.cancel(session, args.id, args.by)
        document = queue.run_summary(run, session.get(Dataset, run.dataset_id).name)
    emit(args, document, [_line(document)])
    return 0


def _worker(args, settings: Settings, sessions) -> int:
    from monitors.pipeline.worker import (
        Worker,  # the scheduler, and through it the pipeline
    )

    _logging()
    worker = Worker(sessions, settings, executor=args.executor,
                    lease=dt.timedelta(seconds=args.lease_seconds), poll_interval=args.poll_seconds,
                    max_parallel=args.parallel, schedules=not args.no_schedules)
    if args.once:
        with worker.stop_on_signals():
            executed = worker.drain()
        print(f"worker: {len(executed)} run(s) executed", file=sys.stderr)
        return 0
    return worker.run_forever()


COMMANDS = {
    ("run", None): _run,
    ("runs", "list"): _runs_list,
    ("runs", "cancel"): _runs_cancel,
    ("runs", "show"): _runs_show,
    ("runs", "replay"): _runs_replay,
    ("worker", None): _worker,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitors.cli.runs",
                                     description="Run requests, the run queue and the worker.")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        _, sessions = open_store(settings.db_url)
        return COMMANDS[(args.command, getattr(args, "action", None))](args, settings, sessions)
    # NotFound and the store's UnknownDataset are LookupErrors; Refused, Invalid and the plain
    # ValueErrors of older code are ValueErrors: one line on stderr, exit 2
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
