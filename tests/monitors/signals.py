"""Signals, alerts and the alerts CLI as the alert, mute and notification tests use them."""
from __future__ import annotations

import argparse
import datetime as dt

import pandas as pd

from detectors.result import Finding
from monitors.cli.alerts import COMMANDS, add_commands
from monitors.lifecycle.alerts import Signal, list_alerts, record_signals
from store.models import Dataset

NOW = dt.datetime(2026, 11, 24, 7, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 10)


def day(n: int) -> dt.date:
    return DAY + dt.timedelta(days=n)


def finding(partition: dt.date, value: float = 412.0, detail: str | None = None) -> Finding:
    return Finding(at=pd.Timestamp(partition), value=value, expected=220.0, lower=180.0,
                   upper=260.0, score=5.1,
                   detail=detail or f"[seasonal] {value} above band [180.0, 260.0]")


def fires(dataset_id: int, partition: dt.date, *, monitor: str = "row_count_anomaly",
          column: str | None = None, point: bool = True, severity: str = "warning",
          value: float = 412.0, owner: str | None = None, detector: str = "seasonal") -> Signal:
    return Signal(dataset_id=dataset_id, monitor=monitor, detector=detector, column=column,
                  severity=severity, partition=partition, finding=finding(partition, value),
                  point=point, owner=owner, evidence={"metric": "row_count"})


def passes(dataset_id: int, partition: dt.date, *, monitor: str = "row_count_anomaly",
           column: str | None = None, point: bool = True, severity: str = "warning") -> Signal:
    return Signal(dataset_id=dataset_id, monitor=monitor, detector="seasonal", column=column,
                  severity=severity, partition=partition, finding=None, point=point)


def add_dataset(session, name: str) -> int:
    dataset = Dataset(name=name, format="csv")
    session.add(dataset)
    session.flush()
    return dataset.id


def record(sessions, signals, *, now=NOW, run_id=None, config_version="cfg1"):
    with sessions.begin() as session:
        return record_signals(session, signals, now=now, config_version=config_version,
                              run_id=run_id)


def alerts(sessions, **filters) -> list[dict]:
    with sessions() as session:
        return list_alerts(session, now=filters.pop("now", NOW), **filters)


def run_cli(settings, sessions, *argv) -> int:
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return COMMANDS[(args.command, args.action)](args, settings, sessions)
