"""Backtest: replay a monitor over stored history, causally, without touching real alerts.

The preview before a change goes live: a saved monitor, or an edited one not yet saved,
evaluated partition by partition on exactly what a live run would have seen that day.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
from sqlalchemy.orm import Session

from monitors.judge.baselines import load_baselines
from monitors.judge.references import load_references
from monitors.datasets import find_dataset
from monitors.config import MonitorConfig, MonitorsConfig
from monitors.contract import Contract
from monitors.errors import Invalid, NotFound
from monitors.judge.evaluate import (
    HISTORY_DAYS,
    MetricHistory,
    evaluate_partition,
    history_since,
    metrics_read_by,
)
from monitors.intake.freshness import partition_day_end
from monitors.judge.plan import MonitorSpec, plan_monitors, spec_from_config
from store import queries
from store.models import Dataset


@dataclass(frozen=True, slots=True)
class BacktestAlert:
    dataset: str
    monitor: str
    column: str | None
    partition: dt.date
    value: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    message: str

    @property
    def week(self) -> str:
        year, week, _ = self.partition.isocalendar()
        return f"{year}-W{week:02d}"


def find_monitor(session: Session, config: MonitorsConfig, name: str,
                 dataset: str | None = None) -> tuple[Dataset, MonitorSpec]:
    """A saved or automatic monitor by name (and dataset when the name is ambiguous)."""
    candidates = [find_dataset(session, dataset)] if dataset else list(queries.list_datasets(session))
    found = []
    for candidate in candidates:
        specs = plan_monitors(candidate.kind,
                              Contract.model_validate(candidate.contract), config.dataset(candidate.name))
        found += [(candidate, s) for s in specs if s.name == name]
    if not found:
        raise NotFound(f"no monitor named {name!r}" + (f" on dataset {dataset!r}" if dataset else ""))
    if len(found) > 1:
        raise Invalid(f"monitor {name!r} exists on {len(found)} datasets "
                      f"({', '.join(d.name for d, _ in found)}): name one with --dataset")
    return found[0]


def backtest(session: Session, dataset: Dataset, spec: MonitorSpec | MonitorConfig,
             start: dt.date, end: dt.date, *, now: dt.datetime | None = None,
             config: MonitorsConfig | None = None) -> list[BacktestAlert]:
    """The alerts `spec` would have raised on each partition from `start` to `end`."""
    if start > end:
        raise Invalid(f"the range is empty: {start} is after {end}")
    if isinstance(spec, MonitorConfig):
        spec = spec_from_config(spec)
    references = load_references(session, dataset.id, config.dataset(dataset.name)
                                 if config is not None else None)
    history = MetricHistory(queries.read_metrics(session, dataset.id, until=end,
                                                 since=min(history_since(start),
                                                           references.earliest() or dt.date.max),
                                                 metrics=sorted(metrics_read_by([spec]))),
                            window_days=HISTORY_DAYS,
                            baselines=load_baselines(session, dataset.id), references=references)
    contract = Contract.model_validate(dataset.contract)  # once, for every partition
    alerts: list[BacktestAlert] = []
    condition_open = False  # a condition alert (drift, breakout) stays one alert until it passes
    for partition in pd.date_range(start, end, freq="D").date:
        # a day after the partition's day ended: any deadline has passed, as for a live run
        clock = now or partition_day_end(partition) + dt.timedelta(days=1)
        for verdict in evaluate_partition(session, dataset, contract, [spec], history,
                                          partition, clock):
            finding = verdict.finding
            if verdict.skipped:
                continue
            if finding is None:
                condition_open = False
                continue
            if not spec.point:
                if condition_open:
                    continue
                condition_open = True
            alerts.append(BacktestAlert(dataset.name, spec.name, spec.column, verdict.partition,
                                        finding.value, finding.expected, finding.lower,
                                        finding.upper, finding.detail))
    return alerts
