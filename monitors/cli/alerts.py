"""The `alerts` and `mutes` commands; `monitors.cli` registers them through `add_commands`
and dispatches through `COMMANDS` (handler(args, settings, sessions) -> exit code).

`--json` prints one JSON document on stdout and nothing else. A refused action (unknown
alert, bad resolution, a mute without an end) prints `error: ...` on stderr and exits 2;
nothing is stored then, since each action runs in one transaction.
"""
from __future__ import annotations

import argparse
import datetime as dt
import functools
import re
import sys
from typing import Any

from detectors.numbers import fmt_number
from monitors.cli.io import EXIT_USAGE, count_argument, date_argument, emit
from monitors.lifecycle.alerts import (
    RESOLUTIONS,
    acknowledge,
    comment,
    get_alert,
    list_alerts,
    reopen,
    resolve,
)
from monitors.lifecycle.mutes import (
    MATCHER_KEYS,
    MAX_MUTE,
    MuteState,
    list_mutes,
    mute_summary,
    preview,
)
from store.models import AlertStatus, Severity

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration like 30m, 2h, 3d or 1w: {text!r}")
    try:
        return dt.timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:  # 10**20 days: past any date; a mute's own limit is checked later
        raise argparse.ArgumentTypeError(f"duration too long: {text!r}") from None


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO date-time (2026-12-01T18:00, UTC unless an offset is given): {text!r}") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    alerts = subparsers.add_parser("alerts", help="list, show and triage alerts")
    alert_actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = alert_actions.add_parser(
        "list", help="alerts, last seen first",
        description="--from and --to bound the alert's partition (the latest it fired on), "
                    "both days included.")
    listing.add_argument("--status", choices=[s.value for s in AlertStatus])
    listing.add_argument("--dataset")
    listing.add_argument("--severity", choices=[s.value for s in Severity])
    listing.add_argument("--monitor")
    listing.add_argument("--unmuted", action="store_true", help="leave out muted alerts")
    listing.add_argument("--from", dest="since", type=date_argument, metavar="YYYY-MM-DD",
                         help="partitions from this day")
    listing.add_argument("--to", dest="until", type=date_argument, metavar="YYYY-MM-DD",
                         help="partitions up to this day, included")
    listing.add_argument("--limit", type=count_argument)
    listing.add_argument("--offset", type=count_argument, default=0, help="skip this many (paging)")
    listing.add_argument("--json", action="store_true")

    show = alert_actions.add_parser("show", help="one alert with its timeline")
    show.add_argument("id", type=count_argument)
    show.add_argument("--json", action="store_true")

    ack = alert_actions.add_parser("ack", help="acknowledge: someone is on it")
    ack.add_argument("id", type=count_argument)
    ack.add_argument("--by", required=True)
    ack.add_argument("--note")

    close = alert_actions.add_parser("resolve", help="resolve with a resolution")
    close.add_argument("id", type=count_argument)
    close.add_argument("--by", required=True)
    close.add_argument("--resolution", required=True, help=" | ".join(RESOLUTIONS))
    close.add_argument("--note")

    again = alert_actions.add_parser("reopen", help="reopen a resolved alert")
    again.add_argument("id", type=int)
    again.add_argument("--by", required=True)
    again.add_argument("--note", help="why it is not over")

    remark = alert_actions.add_parser("comment", help="add a note to the timeline")
    remark.add_argument("id", type=count_argument)
    remark.add_argument("--by", required=True)
    remark.add_argument("--note", required=True)

    parting = alert_actions.add_parser(
        "split", help="take an alert out of the incident it was grouped into")
    parting.add_argument("id", type=int)
    parting.add_argument("--by", required=True)

    accepting = alert_actions.add_parser(
        "accept", help="accept the change as the new normal",
        description="For a level change, an anomaly or a drift: from its change point on, the "
                    "monitors of that metric judge only the history after it; the alert is "
                    "resolved as expected. `alerts unaccept` undoes it.")
    accepting.add_argument("id", type=int)
    accepting.add_argument("--by", required=True)
    accepting.add_argument("--note", required=True, help="why this is the new normal")

    withdrawing = alert_actions.add_parser(
        "unaccept", help="withdraw an acceptance: judge on the whole history again")
    withdrawing.add_argument("id", type=int)
    withdrawing.add_argument("--by", required=True)

    mutes = subparsers.add_parser("mutes", help="keep matching alerts quiet until an end time")
    mute_actions = mutes.add_subparsers(dest="action", required=True, metavar="ACTION")

    adding = mute_actions.add_parser(
        "add", help="add a mute",
        description="Matchers are exact values or globs (income*, score_?); all must match. "
                    f"A mute lasts at most {MAX_MUTE.days} days.")
    adding.add_argument("--by", required=True)
    adding.add_argument("--reason", required=True)
    end = adding.add_mutually_exclusive_group()
    end.add_argument("--until", type=_moment, help="end (ISO date-time, UTC unless an offset is given)")
    end.add_argument("--for", dest="duration", type=_duration, help="length: 30m, 2h, 3d, 1w")
    adding.add_argument("--starts", type=_moment, help="start (default: now)")
    for key in MATCHER_KEYS:
        adding.add_argument(f"--{key}")
    adding.add_argument("--preview", action="store_true",
                        help="only list the open alerts it would cover; store nothing")
    adding.add_argument("--json", action="store_true")

    mute_list = mute_actions.add_parser("list", help="mutes with their state, newest first")
    mute_list.add_argument("--state", choices=[s.value for s in MuteState])
    mute_list.add_argument("--json", action="store_true")

    ending = mute_actions.add_parser("expire", help="end a mute now")
    ending.add_argument("id", type=count_argument)
    ending.add_argument("--by", required=True)


def _refusals_exit_2(handler):
    @functools.wraps(handler)
    def guarded(args, settings, sessions) -> int:
        try:
            return handler(args, settings, sessions)
        except (LookupError, ValueError) as exc:  # NotFound is both; the store's UnknownDataset a LookupError
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return guarded


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _alert_line(a: dict[str, Any]) -> str:
    where = f"{a['dataset']}.{a['column']}" if a["column"] else a["dataset"]
    muted = " [muted]" if a["muted"] else ""
    caused = f" [caused by #{a['caused_by']}]" if a.get("caused_by") is not None else ""
    return (f"{a['id']:>5} {a['status']:<12} {a['severity']:<8} {where} {a['monitor']} "
            f"{a['partition']} x{a['occurrences']}{muted}{caused}: {a['message']}")


@_refusals_exit_2
def _alerts_list(args, settings, sessions) -> int:
    with sessions() as session:
        documents = list_alerts(session, status=args.status, dataset=args.dataset,
                                severity=args.severity, monitor=args.monitor,
                                since=args.since, until=args.until,
                                include_muted=not args.unmuted, limit=args.limit,
                                offset=args.offset, now=_now())
    emit(args, documents, [_alert_line(a) for a in documents])
    return 0


def _number(value: float | None) -> str:
    """As the alert's message writes it; the JSON keeps the full value."""
    return "-" if value is None else fmt_number(value)


@_refusals_exit_2
def _alerts_show(args, settings, sessions) -> int:
    with sessions() as session:
        document = get_alert(session, args.id, now=_now())
    lines = [_alert_line(document),
             f"      expected {_number(document['expected'])} in [{_number(document['lower'])}, "
             f"{_number(document['upper'])}], value {_number(document['value'])}; "
             f"first seen {document['first_seen_at']}, "
             f"last seen {document['last_seen_at']}"
             + (f"; resolution {document['resolution']}" if document["resolution"] else ""),
             "      partitions fired: " + ", ".join(
                 f["partition"] + (" (cleared)" if f["cleared_at"] else "") for f in document["firings"]),
             "      timeline:"]
    lines += [f"        {e['at']} {e['kind']:<15} {e['by']}" + (f": {e['note']}" if e["note"] else "")
              for e in document["events"]]
    emit(args, document, lines)
    return 0


@_refusals_exit_2
def _alerts_ack(args, settings, sessions) -> int:
    with sessions.begin() as session:
        acknowledge(session, args.id, by=args.by, note=args.note, now=_now())
    print(f"alert {args.id} acknowledged by {args.by}")
    return 0


@_refusals_exit_2
def _alerts_resolve(args, settings, sessions) -> int:
    with sessions.begin() as session:
        alert = resolve(session, args.id, by=args.by, resolution=args.resolution, note=args.note,
                        now=_now())
        resolution = alert.resolution
    print(f"alert {args.id} resolved by {args.by} ({resolution})")
    return 0


@_refusals_exit_2
def _alerts_reopen(args, settings, sessions) -> int:
    with sessions.begin() as session:
        reopen(session, args.id, by=args.by, note=args.note, now=_now())
    print(f"alert {args.id} reopened by {args.by}")
    return 0


@_refusals_exit_2
def _alerts_comment(args, settings, sessions) -> int:
    with sessions.begin() as session:
        comment(session, args.id, by=args.by, note=args.note, now=_now())
    print(f"comment added to alert {args.id}")
    return 0


@_refusals_exit_2
def _alerts_split(args, settings, sessions) -> int:
    from monitors.lifecycle.incidents import split

    with sessions.begin() as session:
        split(session, args.id, by=args.by, now=_now())
    print(f"alert {args.id} split out of its incident by {args.by}")
    return 0


@_refusals_exit_2
def _alerts_accept(args, settings, sessions) -> int:
    from monitors.judge.baselines import accept

    with sessions.begin() as session:
        marker = accept(session, args.id, by=args.by, note=args.note, now=_now())
        where = f"{marker.column}·{marker.metric}" if marker.column else marker.metric
        start = marker.from_partition
    print(f"alert {args.id} accepted by {args.by}: {where} is judged from partition {start} on")
    return 0


@_refusals_exit_2
def _alerts_unaccept(args, settings, sessions) -> int:
    from monitors.judge.baselines import unaccept

    with sessions.begin() as session:
        unaccept(session, args.id, by=args.by, now=_now())
    print(f"alert {args.id}: acceptance withdrawn by {args.by}; the alert is open again")
    return 0


@_refusals_exit_2
def _mutes_add(args, settings, sessions) -> int:
    now = _now()
    matchers = {key: getattr(args, key) for key in MATCHER_KEYS}
    starts = args.starts or now
    ends = args.until if args.until is not None else (
        starts + args.duration if args.duration is not None else None)
    with sessions.begin() as session:
        if args.preview:
            covered = preview(session, matchers, now)
            emit(args, covered, [f"would cover alert {a['id']} {a['status']} {a['severity']} "
                                  f"{a['dataset']} {a['column'] or '-'} {a['monitor']} "
                                  f"{a['partition']}: {a['message']}" for a in covered])
            return 0
        # through muting: the gates the mute moves are re-evaluated now
        from monitors.lifecycle import muting

        mute = muting.add(session, matchers=matchers, reason=args.reason, by=args.by,
                          ends_at=ends, starts_at=args.starts, now=now)
        covered = preview(session, mute.matchers, now)
        document = {**mute_summary(mute, now), "covers": [a["id"] for a in covered]}
    emit(args, document, [f"mute {document['id']} {document['state']} until {document['ends_at']}; "
                           f"covers {len(covered)} open alert(s) now"])
    return 0


@_refusals_exit_2
def _mutes_list(args, settings, sessions) -> int:
    with sessions() as session:
        documents = list_mutes(session, _now(), state=args.state)
    emit(args, documents, [
        f"{m['id']:>4} {m['state']:<8} {m['starts_at']} .. {m['ends_at']} by {m['created_by']} "
        + " ".join(f"{k}={v}" for k, v in m["matchers"].items()) + f": {m['reason']}"
        for m in documents])
    return 0


@_refusals_exit_2
def _mutes_expire(args, settings, sessions) -> int:
    from monitors.lifecycle import muting  # the gates the mute moves are re-evaluated

    with sessions.begin() as session:
        muting.end(session, args.id, by=args.by, now=_now())
    print(f"mute {args.id} expired by {args.by}")
    return 0


COMMANDS = {
    ("alerts", "list"): _alerts_list,
    ("alerts", "show"): _alerts_show,
    ("alerts", "ack"): _alerts_ack,
    ("alerts", "resolve"): _alerts_resolve,
    ("alerts", "reopen"): _alerts_reopen,
    ("alerts", "comment"): _alerts_comment,
    ("alerts", "split"): _alerts_split,
    ("alerts", "accept"): _alerts_accept,
    ("alerts", "unaccept"): _alerts_unaccept,
    ("mutes", "add"): _mutes_add,
    ("mutes", "list"): _mutes_list,
    ("mutes", "expire"): _mutes_expire,
}
