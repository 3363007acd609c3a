"""The `gate` command: may the stages that build on a partition use it? (monitors.pipeline.gates)

    python -m monitors gate --dataset model_scores --date 2026-06-30 [--json]

A dataset's gate holds on critical alerts unless its config says otherwise
(`gate: {holds_on: warning}`); the verdict names the severity it holds on.

Exit 0: safe. Exit 1: held; the alerts that hold it are listed (as text, or in the JSON
document's `holding`). Exit 2: unknown dataset or partition, one line on stderr saying
which. Every verdict change is recorded in the gates' audit trail.
"""
from __future__ import annotations

import argparse
import sys

from monitors.cli.io import EXIT_USAGE, date_argument, emit

EXIT_HELD = 1


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    gate = subparsers.add_parser(
        "gate", help="is a partition safe to use? exit 0 safe, 1 held, 2 unknown",
        description="A partition is held while it, or the same partition of a dataset it is "
                    "built from (upstream), has an open or acknowledged alert that is not muted, "
                    "of the dataset's gate severity or worse (config: gate: {holds_on: "
                    "warning}; default critical). Exit 0 safe, 1 held (the holding alerts "
                    "listed), 2 unknown.")
    gate.add_argument("--dataset", required=True)
    gate.add_argument("--date", required=True, type=date_argument, metavar="YYYY-MM-DD",
                      help="the partition")
    gate.add_argument("--json", action="store_true")


def _gate(args, settings, sessions) -> int:
    from monitors.pipeline.gates import gate_verdict, holding_severities

    try:
        with sessions.begin() as session:  # the audit row, when the verdict changed, commits
            gate = gate_verdict(session, args.dataset, args.date)
            document = gate.to_json()
    except (LookupError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    severities = " and ".join(holding_severities(gate.holds_on))
    lines = [f"{gate.dataset} {gate.partition}: {gate.verdict} ({severities} alerts hold it)"]
    lines += [f"  held by #{a['id']} {a['dataset']} {a['monitor']}"
              + (f" on {a['column']}" if a["column"] else "")
              + f" ({a['severity']}, {a['status']}): {a['message']}" for a in document["holding"]]
    emit(args, document, lines)
    return 0 if gate.safe else EXIT_HELD


COMMANDS = {("gate", None): _gate}
