"""Administering monitors: what watches a dataset (live or disabled, with its automatic
family) and which columns automatic watching leaves out and why, enabling and disabling a
monitor, saving an edited one, pinning and unpinning a drift reference, each written to
the monitors YAML with an audit record of who changed what.

A write reads the file just before changing it (a concurrent edit of another dataset is
kept), validates the whole config, replaces the file atomically, and appends a line to
`config-changes.log` in MONITORS_HOME: at, by, dataset, what, old -> new config version.
A refused change writes nothing. No Streamlit here: the dashboard passes its commands on.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable

import pandas as pd
from pydantic import ValidationError
from sqlalchemy.orm import Session

from monitors.config import (
    AutomaticMonitors,
    DatasetConfig,
    MonitorConfig,
    MonitorsConfig,
    ReferenceConfig,
    load_config,
    save_config,
)
from monitors.config_versions import record_version
from monitors.contract import Contract
from monitors.datasets import find_dataset
from monitors.errors import Invalid, NotFound, Refused
from monitors.judge.plan import TEMPORAL, MonitorSpec, plan_monitors
from monitors.judge.references import load_references
from monitors.settings import Settings
from store import queries
from store.models import Dataset, utcnow

CONFIG_LOG = "config-changes.log"
CHANGE_FIELDS = ["at", "by", "dataset", "change", "version"]
# what the dashboard's table shows of list_monitors' rows (they also carry `family`)
MONITOR_FIELDS = ["monitor", "enabled", "state", "source", "kind", "detector", "metric", "column",
                  "severity", "options"]


def family_of(spec: MonitorSpec) -> str | None:
    """The AutomaticMonitors switch that makes an automatic spec (None for the others),
    read from what the spec watches and how."""
    if not spec.automatic:
        return None
    if spec.kind in ("freshness", "missing"):
        return "freshness"
    if spec.kind == "contract":
        return "contract"
    if spec.detector == "drift":
        return "drift"
    if spec.detector == "new_category":
        return "categories"
    by_detector = {"profile_shift": "profiles", "duplicates": "duplicates", "repeats": "repeats"}
    if spec.detector in by_detector:
        return by_detector[spec.detector]
    return {"row_count": "volume", "null_fraction": "nulls", "mean": "levels"}.get(spec.metric or "")


class _Plans:
    """A dataset's monitors three ways: every one that could watch it (all families on,
    every item enabled), the names live now, and its automatic specs by name."""

    def __init__(self, dataset: Dataset, config: MonitorsConfig):
        contract = Contract.model_validate(dataset.contract)
        declared = config.dataset(dataset.name)
        self.declared = declared
        self.live = {s.name for s in plan_monitors(dataset.kind, contract, declared)}
        self.automatic = {s.name: s for s in plan_monitors(dataset.kind, contract, None)}
        self.every = plan_monitors(dataset.kind, contract, _everything(declared))

    def spec(self, name: str) -> MonitorSpec | None:
        return next((s for s in self.every if s.name == name), None)

    def family(self, name: str) -> str | None:
        original = self.automatic.get(name)
        return family_of(original) if original is not None else None


def _everything(declared: DatasetConfig | None) -> DatasetConfig | None:
    if declared is None:
        return None
    return declared.model_copy(update={
        "automatic": AutomaticMonitors(),
        "checks": [c.model_copy(update={"enabled": True}) for c in declared.checks],
        "monitors": [m.model_copy(update={"enabled": True}) for m in declared.monitors]})


def list_monitors(session: Session, config: MonitorsConfig, dataset: str) -> list[dict]:
    """Every monitor of a dataset, live or disabled: automatic ones, configured ones and
    automatic ones tuned by the config (same name), each with its automatic `family` (None
    for a configured one); a disabled automatic one says when its family is switched off."""
    plans = _Plans(find_dataset(session, dataset), config)
    families = plans.declared.automatic if plans.declared else AutomaticMonitors()
    rows = []
    for spec in plans.every:
        family = plans.family(spec.name)
        if spec.automatic:
            source = "automatic"
        else:
            source = "automatic, tuned" if spec.name in plans.automatic else "configured"
        state = "enabled" if spec.name in plans.live else "disabled"
        if state == "disabled" and spec.automatic and family and not getattr(families, family):
            state = f"disabled (family {family} off)"
        rows.append({"monitor": spec.name, "enabled": spec.name in plans.live, "state": state,
                     "source": source, "kind": spec.kind, "detector": spec.detector,
                     "metric": spec.metric, "column": spec.column, "severity": spec.severity,
                     "options": json.dumps(spec.options, sort_keys=True) if spec.options else "",
                     "family": family})
    return rows


def editable_monitor(session: Session, config: MonitorsConfig, dataset: str,
                     name: str) -> MonitorConfig | None:
    """A metric monitor as the config would declare it (automatic ones included), for an
    edit form; None for checks and the batch-state monitors (contract, freshness)."""
    declared = config.dataset(dataset)
    for monitor in declared.monitors if declared is not None else []:
        if monitor.name == name:
            return monitor
    spec = _Plans(find_dataset(session, dataset), config).spec(name)
    if spec is None or spec.kind != "metric" or not spec.metric:
        return None
    return MonitorConfig(name=spec.name, metric=spec.metric, column=spec.column,
                         detector=spec.detector, options=dict(spec.options), severity=spec.severity)


SKIPPED_FIELDS = ["column", "type", "why", "still watched"]
REFERENCE_FIELDS = ["column", "declared", "from", "to"]
EVERY_COLUMN = "(every column)"


def skipped_columns(session: Session, config: MonitorsConfig, dataset: str) -> list[dict]:
    """The columns automatic watching leaves (partly) alone, each with why and what still
    watches it: identifiers marked `sensitive` in the contract, identifiers found in the
    stored profiles (named like one, near-unique in every batch: the runs skip their level,
    profile, category and drift monitors), and date columns (no level or drift of a date)."""
    from detectors.profiles import identifier_reason  # pandas: only where it is shown

    found = find_dataset(session, dataset)
    contract = Contract.model_validate(found.contract or {"columns": []})
    live = plan_monitors(found.kind, contract, config.dataset(dataset))
    metrics = queries.read_metrics(session, found.id, metrics=["count", "distinct"])
    rows = []
    for column in contract.columns:
        watching = sorted(s.name for s in live if s.column == column.name
                          and not s.not_for_identifiers)
        still = ", ".join(watching) or "nothing"
        why = None
        if column.sensitive:
            why = "sensitive in the contract (an identifier): its level and distribution mean nothing"
        elif column.type in TEMPORAL:
            why = f"a {column.type} column: no level, profile or drift monitors for dates"
        else:
            mine = metrics[metrics["column"] == column.name]
            if not mine.empty:
                profile = mine.pivot_table(index="partition", columns="metric", values="value")
                profile.index = pd.to_datetime(profile.index)
                why = identifier_reason(profile, column.name)
        if why:
            rows.append({"column": column.name, "type": str(column.type), "why": why,
                         "still watched": still})
    return rows


def pinned_references(session: Session, config: MonitorsConfig, dataset: str) -> list[dict]:
    """A dataset's pinned drift references as declared (a date range or its first N
    partitions) and the dates they stand for now (none yet for `first` N before any batch)."""
    found = find_dataset(session, dataset)
    declared = config.dataset(dataset)
    windows = load_references(session, found.id, declared)
    rows = []
    for reference in declared.references if declared else []:
        window = windows.window(reference.column)
        rows.append({"column": reference.column or EVERY_COLUMN,
                     "declared": (f"first {reference.first} partitions" if reference.first
                                  else f"{reference.start} to {reference.end}"),
                     "from": window.start if window else None, "to": window.end if window else None})
    return rows


def pin_reference(session: Session, settings: Settings, dataset: str, start: dt.date,
                  end: dt.date, *, column: str | None = None, by: str) -> str:
    """Pin the drift reference of a dataset (or of one column) to a date range, replacing
    the one it had; the new config version. Invalid when the range is empty or the column
    is not the dataset's."""
    _need_name(by)
    found = find_dataset(session, dataset)
    names = [c["name"] for c in (found.contract or {}).get("columns", [])]
    if column is not None and column not in names:
        raise Invalid(f"dataset {dataset} has no column {column!r}")
    try:
        pinned = ReferenceConfig.model_validate({"column": column, "from": start, "to": end})
    except ValidationError as exc:
        raise Invalid(f"reference {start} to {end}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None

    def change(declared: DatasetConfig) -> DatasetConfig:
        declared.references = [r for r in declared.references if r.column != column] + [pinned]
        return declared

    return _write(settings, found, change, by=by, session=session,
                  what=f"pinned the drift reference of {column or 'every column'} to {start}..{end}")


def unpin_reference(session: Session, settings: Settings, dataset: str, *,
                    column: str | None = None, by: str) -> str:
    """Remove the pinned reference of a dataset (or of one column); the new config
    version. NotFound when there is none."""
    _need_name(by)
    found = find_dataset(session, dataset)
    declared = load_config(settings.config_path, settings).dataset(dataset)
    if declared is None or not any(r.column == column for r in declared.references):
        raise NotFound(f"dataset {dataset} has no pinned reference for {column or 'every column'}")

    def change(declared: DatasetConfig) -> DatasetConfig:
        declared.references = [r for r in declared.references if r.column != column]
        return declared

    return _write(settings, found, change, by=by, session=session,
                  what=f"unpinned the drift reference of {column or 'every column'}")


def set_monitor_enabled(session: Session, settings: Settings, dataset: str, name: str,
                        enabled: bool, *, by: str) -> str:
    """Enable or disable a monitor in the config file; the new config version. A check or
    configured monitor flips its `enabled`; an automatic metric monitor is disabled by a
    configured one of the same name with `enabled: false` (removed again on enabling, when
    it tunes nothing); contract and freshness monitors switch with their automatic family."""
    _need_name(by)
    found = find_dataset(session, dataset)
    plans = _Plans(found, load_config(settings.config_path, settings))
    spec = plans.spec(name)
    if spec is None:
        raise NotFound(f"no monitor {name!r} on dataset {dataset!r}")
    family = plans.family(name)

    def change(declared: DatasetConfig) -> DatasetConfig:
        for check in declared.checks:
            if check.label() == name:
                check.enabled = enabled
                return declared
        for monitor in declared.monitors:
            if monitor.name == name:
                monitor.enabled = enabled
                original = plans.automatic.get(name)
                if enabled and original is not None and _tunes_nothing(monitor, original):
                    declared.monitors.remove(monitor)
                return declared
        if spec.kind in ("contract", "freshness", "missing") and family:
            setattr(declared.automatic, family, enabled)
            return declared
        if family and not getattr(declared.automatic, family):
            if enabled:
                setattr(declared.automatic, family, True)
            return declared
        if not enabled:
            declared.monitors.append(MonitorConfig(
                name=name, metric=spec.metric, column=spec.column, detector=spec.detector,
                options=dict(spec.options), severity=spec.severity, enabled=False))
        return declared

    return _write(settings, found, change, by=by,
                  what=f"{'enabled' if enabled else 'disabled'} {name}", session=session)


def save_monitor(session: Session, settings: Settings, dataset: str,
                 monitor: MonitorConfig | dict, *, by: str) -> str:
    """Add or replace (by name) a configured monitor, tuning an automatic one of that name;
    the new config version. Invalid (and nothing written) when the monitor or the config it
    makes does not validate."""
    _need_name(by)
    raw = monitor.model_dump(mode="json") if isinstance(monitor, MonitorConfig) else monitor
    try:
        monitor = MonitorConfig.model_validate(raw)
    except ValidationError as exc:
        raise Invalid(f"monitor {raw.get('name')!r} is not valid: {exc}") from None

    def change(declared: DatasetConfig) -> DatasetConfig:
        declared.monitors = [m for m in declared.monitors if m.name != monitor.name] + [monitor]
        return declared

    return _write(settings, find_dataset(session, dataset), change, by=by,
                  what=f"saved {monitor.name} ({monitor.detector} on "
                       f"{monitor.column or 'table'}.{monitor.metric} "
                       f"{json.dumps(monitor.options, sort_keys=True)})", session=session)


def monitor_noise(session: Session, dataset: str | None = None) -> pd.DataFrame:
    """Per monitor: alerts, alerts per week over the dataset's delivered span, how many are
    unresolved, and the share of those a person resolved (`judged`) that were false
    positives; auto-resolved alerts passed on their own and say nothing either way.
    Noisiest first."""
    counts = queries.count_alerts_by_monitor(session)
    spans = queries.partition_spans(session)
    if dataset is not None:
        counts = counts[counts["dataset"] == dataset]
    weeks = counts["dataset"].map(
        lambda name: max(1.0, ((spans[name][1] - spans[name][0]).days + 1) / 7) if name in spans else 1.0
    ).astype(float)  # a dataset with no alert maps an empty text column
    frame = counts.assign(
        per_week=(counts["alerts"] / weeks).round(2),
        false_positive_share=(counts["false_positive"] / counts["judged"].where(counts["judged"] > 0)).round(3))
    return frame[["dataset", "monitor", "alerts", "per_week", "unresolved", "judged",
                  "false_positive", "false_positive_share"]].sort_values(
        ["per_week", "dataset", "monitor"], ascending=[False, True, True], kind="stable").reset_index(drop=True)


def list_config_changes(settings: Settings, limit: int = 20) -> list[dict]:
    """The latest audited changes to the monitors file, newest first."""
    path = settings.home / CONFIG_LOG
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    return [dict(zip(CHANGE_FIELDS, line.split("\t")))
            for line in reversed(lines) if line.count("\t") == len(CHANGE_FIELDS) - 1]


def _need_name(by: str) -> None:
    if not by:
        raise Refused("changing monitors needs a name: say who you are first")


def _tunes_nothing(monitor: MonitorConfig, original: MonitorSpec) -> bool:
    return (monitor.metric, monitor.column, monitor.detector, monitor.options, monitor.severity) \
        == (original.metric, original.column, original.detector, original.options, original.severity)


def _declared_or_new(config: MonitorsConfig, dataset: Dataset) -> DatasetConfig:
    """The dataset's declaration; a dataset made from a first batch (`ingest --create`) gets
    one from its store row, so a monitor can be added to it."""
    declared = config.dataset(dataset.name)
    if declared is not None:
        return declared
    return DatasetConfig(name=dataset.name, kind=dataset.kind, format=dataset.format,
                         source=dataset.source, table=dataset.table_name,
                         partition_key=dataset.partition_key, schedule=dataset.schedule,
                         deadline_hours=dataset.deadline_hours)


def _write(settings: Settings, dataset: Dataset, change: Callable[[DatasetConfig], DatasetConfig],
           *, by: str, what: str, session: Session | None = None) -> str:
    # read now, not from a cache: the change applies to the file as it is on disk
    config = load_config(settings.config_path, settings)
    before = config.version_hash()
    changed = change(_declared_or_new(config, dataset).model_copy(deep=True))
    datasets = [changed if d.name == dataset.name else d for d in config.datasets]
    if config.dataset(dataset.name) is None:
        datasets.append(changed)
    try:
        new = MonitorsConfig.model_validate(
            {**config.model_dump(mode="json"), "datasets": [d.model_dump(mode="json") for d in datasets]},
            context={"settings": settings})
    except ValidationError as exc:
        raise Invalid(f"the monitors file would not be valid: {exc}") from None
    partial = settings.config_path.with_name(settings.config_path.name + ".partial")
    save_config(new, partial)
    try:
        load_config(partial, settings)  # what was written parses back, or the old file stays
    except ValueError:
        partial.unlink()
        raise
    os.replace(partial, settings.config_path)
    after = new.version_hash()
    if session is not None:  # the new version is this person's, not a hand edit's
        record_version(session, new, settings, by=by)
    with (settings.home / CONFIG_LOG).open("a", encoding="utf-8") as log:
        log.write(f"{utcnow().isoformat(timespec='seconds')}\t{by}\t{dataset.name}\t{what}\t"
                  f"{before} -> {after}\n")
    return after
