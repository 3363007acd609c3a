"""The `stages` commands: the stages that build on a dataset's partitions (monitors.pipeline.stages).

    python -m monitors stages list --dataset D [--date P] [--json]
    python -m monitors stages run --dataset D --date P [--from-stage S] --by WHO [--now]
    python -m monitors stages override --dataset D --date P --by WHO --reason TEXT
    python -m monitors stages skip --dataset D --date P --stage S --by WHO --reason TEXT

Exit 0 done; 1 a stage run here (`run --now`) failed or stays held; 2 usage error,
unknown dataset, partition or stage, or a refused action (an override without a reason),
which changes nothing.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from monitors.cli.io import date_argument, emit

EXIT_NOT_DONE = 1


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    stages = subparsers.add_parser("stages", help="the stages that build on each partition")
    commands = stages.add_subparsers(dest="action", required=True)

    listing = commands.add_parser("list", help="each partition's stages and their states")
    listing.add_argument("--dataset", required=True)
    listing.add_argument("--date", type=date_argument, metavar="YYYY-MM-DD")
    listing.add_argument("--json", action="store_true")

    run = commands.add_parser("run", help="run a partition's stages again (the gate still applies)")
    run.add_argument("--dataset", required=True)
    run.add_argument("--date", required=True, type=date_argument, metavar="YYYY-MM-DD")
    run.add_argument("--from-stage", help="the first stage to run again (default: the first)")
    run.add_argument("--by", required=True, help="who asks (kept in the audit trail)")
    run.add_argument("--now", action="store_true", help="run them in this process, now")
    run.add_argument("--json", action="store_true")

    override = commands.add_parser(
        "override", help="let a partition's held stages past its closed gate (needs a reason)")
    override.add_argument("--dataset", required=True)
    override.add_argument("--date", required=True, type=date_argument, metavar="YYYY-MM-DD")
    override.add_argument("--by", required=True)
    override.add_argument("--reason", default="", help="why: kept in the audit trail (required)")
    override.add_argument("--json", action="store_true")

    skip = commands.add_parser("skip", help="pass over a waiting or failed stage (needs a reason)")
    skip.add_argument("--dataset", required=True)
    skip.add_argument("--date", required=True, type=date_argument, metavar="YYYY-MM-DD")
    skip.add_argument("--stage", required=True)
    skip.add_argument("--by", required=True)
    skip.add_argument("--reason", default="")
    skip.add_argument("--json", action="store_true")


def _line(stage: dict[str, Any]) -> str:
    state = stage["state"] + (f" by #{stage['held_by']}" if stage["held_by"] else "")
    code = f" exit {stage['exit_code']}" if stage["exit_code"] is not None else ""
    return (f"{stage['partition']} {stage['stage']:<16} {state:<16} attempts {stage['attempts']}"
            f"{code}" + (f"  {stage['note']}" if stage["note"] else ""))


def _list(args, settings, sessions) -> int:
    from monitors.pipeline.stages import list_stages

    with sessions() as session:
        documents = list_stages(session, args.dataset, args.date)
    emit(args, documents, [_line(d) for d in documents])
    return 0


def _run(args, settings, sessions) -> int:
    from monitors.config import load_config
    from monitors.pipeline.stages import list_stages, rerun

    config = load_config(settings.config_path, settings)
    with sessions.begin() as session:
        rerun(session, config, args.dataset, args.date, by=args.by, from_stage=args.from_stage)
    if args.now:
        from monitors.datasets import find_dataset
        from monitors.pipeline.worker import Worker

        with sessions() as session:
            dataset_id = find_dataset(session, args.dataset).id
        Worker(sessions, settings, schedules=False).run_stages(dataset_id)
    with sessions() as session:
        documents = list_stages(session, args.dataset, args.date)
    emit(args, documents, [_line(d) for d in documents])
    if args.now and any(d["state"] not in ("succeeded", "skipped") for d in documents):
        print(f"{args.dataset} {args.date}: not every stage succeeded", file=sys.stderr)
        return EXIT_NOT_DONE
    return 0


def _override(args, settings, sessions) -> int:
    from monitors.pipeline.stages import override

    with sessions.begin() as session:
        document = override(session, args.dataset, args.date, by=args.by, reason=args.reason)
    emit(args, document, [f"{document['dataset']} {document['partition']}: overridden by "
                          f"{document['by']} past " + ", ".join(f"#{i}" for i in document["alert_ids"])
                          + f" ({document['reason']})"] + [_line(s) for s in document["stages"]])
    return 0


def _skip(args, settings, sessions) -> int:
    from monitors.pipeline.stages import skip

    with sessions.begin() as session:
        document = skip(session, args.dataset, args.date, args.stage, by=args.by,
                        reason=args.reason)
    emit(args, document, [_line(document)])
    return 0


COMMANDS = {("stages", "list"): _list, ("stages", "run"): _run,
            ("stages", "override"): _override, ("stages", "skip"): _skip}
