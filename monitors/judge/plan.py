"""What watches a dataset: its configured checks and monitors plus the automatic ones, as
one list of specs. A new dataset is watched without a line of config."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monitors.config import AutomaticMonitors, CheckConfig, DatasetConfig, MonitorConfig
from monitors.contract import Contract, LogicalType
from monitors.intake.labels import LabelsConfig

NUMERIC = {LogicalType.integer, LogicalType.float}
TEMPORAL = {LogicalType.date, LogicalType.timestamp}


@dataclass(frozen=True, slots=True)
class MonitorSpec:
    name: str              # unique within the dataset: the alert's `monitor`
    kind: str              # metric | check | freshness | missing | contract
    detector: str
    severity: str
    column: str | None = None
    metric: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # point: one alert per partition; otherwise one per (dataset, column, monitor) that stays
    # open while the condition lasts (drift) or the change is recent (breakouts)
    point: bool = True
    automatic: bool = False
    check: CheckConfig | None = None
    # judged only while the column is not an identifier (detectors.profiles.identifier_reason):
    # a sequence's level or an id's distribution means nothing
    not_for_identifiers: bool = False


def plan_monitors(kind: str, contract: Contract,
                  declared: DatasetConfig | None) -> list[MonitorSpec]:
    """Every spec for a dataset, automatic first; a configured monitor with the same name
    replaces the automatic one (that is how an automatic monitor is tuned or disabled)."""
    if declared is None:
        return _automatic(kind, contract, AutomaticMonitors())
    specs = {s.name: s for s in _automatic(kind, contract, declared.automatic)}
    if declared.labels is not None and declared.automatic.performance:
        specs.update((s.name, s) for s in performance_specs(declared.labels))
    disabled = set()
    for check in declared.checks:
        specs[check.label()] = MonitorSpec(
            name=check.label(), kind="check", detector=check.check, severity=check.severity,
            column=check.column, options=dict(check.options), check=check)
        if not check.enabled:
            disabled.add(check.label())
    for monitor in declared.monitors:
        specs[monitor.name] = spec_from_config(monitor)
        if not monitor.enabled:
            disabled.add(monitor.name)
    return [s for name, s in specs.items() if name not in disabled]


# the realised-performance monitors' names: what a labels run judges for its model outputs
PERFORMANCE = "performance:"
ESTIMATED_DROP = f"{PERFORMANCE}estimated_auc_drop"


def judged_in_own_run(specs: list[MonitorSpec]) -> list[MonitorSpec]:
    """What a dataset's own run judges: every spec but the realised-performance monitors,
    which the run of its labels judges on the day they land (monitors.judge.performance
    .judge_labels). A later rerun or replay of a scored partition would otherwise find the
    figures its labels brought since, and judge them a second time, in another run."""
    return [s for s in specs if not s.name.startswith(PERFORMANCE) or s.name == ESTIMATED_DROP]


def performance_specs(labels: LabelsConfig) -> list[MonitorSpec]:
    """A model output with labels: an absolute floor and a proportional drop on its AUC, and
    proportional rises of Brier and ECE (a calibration break leaves the AUC alone), each
    against the median of the labelled partitions of the reference window (monitors.judge.performance
    stores the series when labels land); and breakouts of the AUC's level."""
    reference = {"baseline": "median", "window": labels.reference_days}
    return [
        MonitorSpec(f"{PERFORMANCE}auc_floor", "metric", "absolute", "critical", metric="auc",
                    options={"lower": labels.min_auc}, automatic=True),
        MonitorSpec(f"{PERFORMANCE}auc_drop", "metric", "proportional", "critical", metric="auc",
                    options={**reference, "max_decrease": labels.max_auc_drop,
                             "direction": "down", "min_abs_change": 0.02}, automatic=True),
        MonitorSpec(f"{PERFORMANCE}brier", "metric", "proportional", "warning", metric="brier",
                    options={**reference, "max_increase": labels.max_brier_increase,
                             "direction": "up", "min_abs_change": 0.01}, automatic=True),
        MonitorSpec(f"{PERFORMANCE}ece", "metric", "proportional", "warning", metric="ece",
                    options={**reference, "max_increase": labels.max_ece_increase,
                             "direction": "up", "min_abs_change": 0.03}, automatic=True),
        # a new level of the AUC over weeks (a slow concept change each day's drop against
        # the reference median does not reach): one alert while the new level is recent
        MonitorSpec(f"{PERFORMANCE}auc_breakouts", "metric", "breakouts", "warning",
                    metric="auc", options={"min_change": 0.05}, point=False, automatic=True),
        # before the labels: the estimate (monitors.judge.performance.estimate) against its own
        # recent level; the labels' run confirms or resolves it
        MonitorSpec(ESTIMATED_DROP, "metric", "proportional", "warning",
                    metric="estimated_auc",
                    options={**reference, "max_decrease": labels.max_auc_drop,
                             "direction": "down", "min_abs_change": 0.02}, automatic=True),
    ]


def spec_from_config(monitor: MonitorConfig) -> MonitorSpec:
    return MonitorSpec(name=monitor.name, kind="metric", detector=monitor.detector,
                       severity=monitor.severity, column=monitor.column, metric=monitor.metric,
                       options=dict(monitor.options),
                       point=monitor.detector not in ("drift", "breakouts"))


def _automatic(kind: str, contract: Contract, auto: AutomaticMonitors) -> list[MonitorSpec]:
    specs: list[MonitorSpec] = []
    add = specs.append
    if auto.contract:
        add(MonitorSpec("contract", "contract", "contract", "critical", automatic=True))
    if auto.freshness:
        add(MonitorSpec("freshness:late", "freshness", "freshness", "warning", automatic=True))
        add(MonitorSpec("freshness:missing", "missing", "missing", "critical", automatic=True))
    if auto.volume:
        # a volume within 10% of expected is not an incident anyone acts on
        add(MonitorSpec("volume:anomalies", "metric", "anomalies", "critical", metric="row_count",
                        options={"min_change": 0.1}, automatic=True))
        add(MonitorSpec("volume:breakouts", "metric", "breakouts", "warning", metric="row_count",
                        point=False, automatic=True))
    if auto.repeats:
        # a date column differs in a re-delivered file by design; the rest is the content
        content = [c.name for c in contract.columns if c.type not in TEMPORAL]
        add(MonitorSpec("repeats", "metric", "repeats", "critical", metric="profile",
                        options={"columns": content}, automatic=True))
    for column in contract.columns:
        if auto.nulls and column.nullable:
            add(MonitorSpec(f"nulls:{column.name}", "metric", "proportional", "warning",
                            column=column.name, metric="null_fraction", automatic=True,
                            options={"baseline": "median", "window": 7, "max_increase": 1.0,
                                     "min_abs_change": 0.05, "direction": "up"}))
        # ids and keys are whole numbers or text; a float is a measurement
        keyish = column.type in (LogicalType.integer, LogicalType.string) and not column.categorical
        if auto.duplicates and keyish:
            # quiet unless the column was unique in every batch so far
            add(MonitorSpec(f"duplicates:{column.name}", "metric", "duplicates", "critical",
                            column=column.name, metric="profile", automatic=True))
        if column.sensitive:
            continue  # identifiers: their level means nothing
        numeric = column.type in NUMERIC and not column.categorical
        if auto.levels and numeric:
            add(MonitorSpec(f"level:{column.name}", "metric", "breakouts", "warning",
                            column=column.name, metric="mean", point=False, automatic=True,
                            not_for_identifiers=keyish))
        if auto.profiles and (numeric or keyish):
            # one open alert per column while its profile is off (a one-batch corruption
            # resolves with the next clean batch)
            add(MonitorSpec(f"profile:{column.name}", "metric", "profile_shift", "warning",
                            column=column.name, metric="profile", point=False, automatic=True,
                            not_for_identifiers=keyish))
        if auto.categories and (column.type == LogicalType.string or column.categorical):
            add(MonitorSpec(f"categories:{column.name}", "metric", "new_category", "warning",
                            column=column.name, metric="freq", automatic=True,
                            not_for_identifiers=keyish))
        if auto.drift:
            # every feature, not only model outputs: a model is only as stable as its inputs
            metric = "freq" if (column.type in (LogicalType.string, LogicalType.boolean)
                                or column.categorical) else "quantiles"
            if column.type in NUMERIC or metric == "freq":
                add(MonitorSpec(f"drift:{column.name}", "metric", "drift", "warning",
                                column=column.name, metric=metric, point=False, automatic=True,
                                not_for_identifiers=keyish))
    return specs
