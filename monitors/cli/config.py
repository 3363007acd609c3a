"""The config commands (wired into `python -m monitors`): `config history`, `config show
VERSION`, `config diff V1 V2` and `config validate FILE`.

`config validate` makes exactly the checks a run makes on its config file, prints the
run's own message on stderr and exits 2 when it refuses; it never opens the store.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from monitors.cli.io import EXIT_USAGE, emit
from monitors.settings import Settings

# commands that must not open (and so create or migrate) the store
STORELESS = {("config", "validate")}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="the monitors config's versions")
    actions = config.add_subparsers(dest="action", required=True)
    history = actions.add_parser("history", help="every config version, newest first")
    history.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="a version's normal form (YAML)")
    show.add_argument("version", help="its number (14 or v14) or hash")
    show.add_argument("--json", action="store_true")
    diff = actions.add_parser("diff", help="what changed between two versions")
    diff.add_argument("old", help="a version number (or hash)")
    diff.add_argument("new", help="a version number (or hash)")
    diff.add_argument("--json", action="store_true")
    validate = actions.add_parser(
        "validate", help="check a config file as a run would (exit 0 valid, 2 invalid); writes nothing")
    validate.add_argument("file", type=Path)
    validate.add_argument("--json", action="store_true")


def _history(args, settings: Settings, sessions) -> int:
    from monitors.config_versions import list_versions

    with sessions() as session:
        versions = list_versions(session)
    lines = []
    for v in versions:
        when = v["file_mtime_at"] or v["introduced_at"]
        lines.append(f"v{v['version']:<4} {when}  {v['introduced_by']:<16} {v['hash']}")
        lines += [f"        {change}" for change in v["changes"]]
    emit(args, versions, lines)
    return 0


def _show(args, settings: Settings, sessions) -> int:
    from monitors.config_versions import get_version, version_summary

    with sessions() as session:
        version = get_version(session, args.version)
        document = {**version_summary(version), "text": version.text}
    if args.json:
        emit(args, document, [])
    else:
        print(f"# config v{version.number} ({version.hash}), introduced by "
              f"{version.introduced_by} at {document['introduced_at']}")
        sys.stdout.write(version.text)
    return 0


def _diff(args, settings: Settings, sessions) -> int:
    from monitors.config_versions import config_of, diff_configs, get_version

    with sessions() as session:
        old, new = get_version(session, args.old), get_version(session, args.new)
        changes = diff_configs(config_of(old), config_of(new))
    document = {"from": old.number, "to": new.number, "changes": changes}
    emit(args, document, changes or [f"v{old.number} and v{new.number} declare the same config"])
    return 0


def _validate(args, settings: Settings, sessions) -> int:
    from monitors.config_versions import validate_file

    try:
        config = validate_file(args.file, settings)
    except ValueError as exc:  # ConfigError, OutsideRoots, a missing file: the run's words
        if args.json:
            emit(args, {"file": str(args.file), "valid": False, "error": str(exc)}, [])
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    from monitors.judge.never_judged import config_warnings

    # valid, but monitors that can never judge (a missing column, an unknown metric) are said
    warnings = config_warnings(config)
    document = {"file": str(args.file), "valid": True, "hash": config.version_hash(),
                "datasets": [d.name for d in config.datasets], "warnings": warnings}
    emit(args, document, [(f"{args.file}: valid ({len(config.datasets)} dataset(s), "
                           f"version hash {document['hash']})"),
                          *(f"warning: {line}" for line in warnings)])
    return 0


COMMANDS = {
    ("config", "history"): _history,
    ("config", "show"): _show,
    ("config", "diff"): _diff,
    ("config", "validate"): _validate,
}
