"""Backtest: replay a monitor over stored history, causally, without touching real alerts.

The preview before a change goes live: a saved monitor, or an edited one not yet saved,
evaluated partition by partition on exactly what a live run would have seen that day.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

import pandas as pd
from sqlalchemy.orm import Session

from monitors.config import MonitorConfig, MonitorsConfig
from monitors.contract import Contract
from monitors.datasets import find_dataset
from monitors.errors import Invalid, NotFound
from monitors.intake.freshness import partition_day_end
from monitors.judge.baselines import load_baselines
from monitors.judge.evaluate import (
    HISTORY_DAYS,
    MetricHistory,
    evaluate_partition,
    history_since,
    metrics_read_by,
)
from monitors.judge.plan import MonitorSpec, plan_monitors, spec_from_config
from monitors.judge.references import load_references
from monitors.settings import Settings
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
    if isinstance(spec, MonitorConfig):
        spec = spec_from_config(spec)
    return backtest_specs(session, dataset, [spec], start, end, now=now, config=config)


def backtest_specs(session: Session, dataset: Dataset, specs: list[MonitorSpec],
                   start: dt.date, end: dt.date, *, now: dt.datetime | None = None,
                   config: MonitorsConfig | None = None,
                   contract: Contract | None = None) -> list[BacktestAlert]:
    """The alerts each of `specs` would have raised on each partition from `start` to
    `end`, under `config`'s pinned references (and `contract`, default the dataset's)."""
    if start > end:
        raise Invalid(f"the range is empty: {start} is after {end}")
    references = load_references(session, dataset.id, config.dataset(dataset.name)
                                 if config is not None else None)
    history = MetricHistory(queries.read_metrics(session, dataset.id, until=end,
                                                 since=min(history_since(start),
                                                           references.earliest() or dt.date.max),
                                                 metrics=sorted(metrics_read_by(specs))),
                            window_days=HISTORY_DAYS,
                            baselines=load_baselines(session, dataset.id), references=references,
                            span=(start, end))
    if contract is None:
        contract = Contract.model_validate(dataset.contract)  # once, for every partition
    alerts: list[BacktestAlert] = []
    # a condition alert (drift, breakout) stays one alert until it passes
    condition_open: set[str] = set()
    for partition in pd.date_range(start, end, freq="D").date:
        # a day after the partition's day ended: any deadline has passed, as for a live run
        clock = now or partition_day_end(partition) + dt.timedelta(days=1)
        for verdict in evaluate_partition(session, dataset, contract, specs, history,
                                          partition, clock):
            spec, finding = verdict.spec, verdict.finding
            if verdict.skipped:
                continue
            if finding is None:
                condition_open.discard(spec.name)
                continue
            if not spec.point:
                if spec.name in condition_open:
                    continue
                condition_open.add(spec.name)
            alerts.append(BacktestAlert(dataset.name, spec.name, spec.column, verdict.partition,
                                        finding.value, finding.expected, finding.lower,
                                        finding.upper, finding.detail))
    return alerts


# ---- two config versions over the same history -------------------------------------------

@dataclass
class ConfigComparison:
    dataset: str
    start: dt.date
    end: dt.date
    config: int | str           # the candidate: a version number, or "current (unrecorded)"
    against: int | str          # what it is compared with
    changes: list[str]          # the config diff's lines about this dataset
    compared: list[str]         # the monitors judged (the ones the two versions set differently)
    gained: list[BacktestAlert]  # raised under `config`, not under `against`
    lost: list[BacktestAlert]    # raised under `against`, not under `config`

    def per_monitor(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for side in ("gained", "lost"):
            for alert in getattr(self, side):
                counts.setdefault(alert.monitor, {"gained": 0, "lost": 0})[side] += 1
        return dict(sorted(counts.items()))

    def to_json(self) -> dict:
        def rows(alerts):
            return [{**asdict(a), "partition": a.partition.isoformat()} for a in alerts]
        return {"dataset": self.dataset, "from": self.start.isoformat(),
                "to": self.end.isoformat(), "config": self.config, "against": self.against,
                "changes": self.changes, "compared": self.compared,
                "per_monitor": self.per_monitor(),
                "gained": rows(self.gained), "lost": rows(self.lost)}


def compare_configs(session: Session, settings: Settings, dataset: Dataset, config_ref: str,
                    against_ref: str | None, start: dt.date, end: dt.date, *,
                    monitor: str | None = None) -> ConfigComparison:
    """The alerts config `config_ref` would have raised over `start`..`end` of `dataset`'s
    stored history that `against_ref` would not (gained), and the reverse (lost), per
    monitor and partition. `against_ref` defaults to the version before `config_ref`. Only
    the monitors the two versions set differently are judged (a monitor set alike raises
    alike on the same history), all of them when the dataset's references or contract
    differ. Nothing is written."""
    from monitors.config_versions import diff_configs, resolve_config, version_before

    candidate, label = resolve_config(session, settings, config_ref)
    if against_ref is None:
        baseline, against = version_before(session, label)
    else:
        baseline, against = resolve_config(session, settings, against_ref)
    plans = []
    for chosen in (candidate, baseline):
        declared = chosen.dataset(dataset.name)
        # a contract declared in the config is what a run's sync puts on the dataset
        contract = (declared.contract if declared is not None and declared.contract is not None
                    else Contract.model_validate(dataset.contract))
        specs = {s.name: s for s in plan_monitors(dataset.kind, contract, declared)}
        plans.append((chosen, contract, specs, declared))
    (_, new_contract, new_specs, new_declared), (_, old_contract, old_specs, old_declared) = plans
    everything = (new_contract != old_contract
                  or (new_declared.references if new_declared else None)
                  != (old_declared.references if old_declared else None))
    names = sorted(n for n in new_specs.keys() | old_specs.keys()
                   if everything or new_specs.get(n) != old_specs.get(n))
    if monitor is not None:
        if monitor not in new_specs.keys() | old_specs.keys():
            raise NotFound(f"no monitor named {monitor!r} on dataset {dataset.name!r} "
                           "under either config")
        names = [n for n in names if n == monitor]
    found = []
    for chosen, contract, specs, _ in plans:
        judged = [specs[n] for n in names if n in specs]
        found.append(backtest_specs(session, dataset, judged, start, end, config=chosen,
                                    contract=contract) if judged else [])
    session.rollback()  # evaluation reads only; make sure of it
    new, old = ({(a.monitor, a.partition): a for a in side} for side in found)
    changes = [line.removeprefix(f"{dataset.name}: ")
               for line in diff_configs(baseline, candidate)
               if line.startswith((f"{dataset.name}: ", f"dataset {dataset.name} "))]
    return ConfigComparison(
        dataset=dataset.name, start=start, end=end, config=label, against=against,
        changes=changes, compared=names,
        gained=[new[k] for k in sorted(new.keys() - old.keys(), key=_order)],
        lost=[old[k] for k in sorted(old.keys() - new.keys(), key=_order)])


def _order(key: tuple[str, dt.date]) -> tuple[dt.date, str]:
    return key[1], key[0]
