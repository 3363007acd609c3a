"""The dashboard's one door to the system: queries return DataFrames, commands go through
monitors. Pages never touch the store directly."""
from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import asdict

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

import detectors
from dashboard import charts
from dashboard.metric_charts import downsample
from detectors.seasonal import find_periods, seasonal_adjust
from monitors import alerts as lifecycle
from monitors import mutes, queue
from monitors.backtest import backtest
from monitors.catalog import find_dataset
from monitors.config import (
    AutomaticMonitors,
    ConfigError,
    DatasetConfig,
    MonitorConfig,
    MonitorsConfig,
    load_config,
    save_config,
)
from monitors.contract import Contract
from monitors.evaluate import QUANTILE_KEYS, MetricHistory
from monitors.freshness import arrival_delay_hours
from monitors.plan import MonitorSpec, plan_monitors
from monitors.settings import load_settings
from monitors.worker import Worker, cron_trigger
from store import queries
from store.engine import open_store
from store.models import BatchStatus, utcnow


@st.cache_resource
def session_factory() -> sessionmaker[Session]:
    _, sessions = open_store(load_settings().db_url)
    return sessions


@st.cache_data(ttl=10)
def datasets_frame() -> pd.DataFrame:
    with session_factory()() as session:
        rows = []
        for d in queries.list_datasets(session):
            partitions = queries.list_partitions(session, d.id)
            rows.append({"dataset": d.name, "kind": d.kind, "format": d.format,
                         "batches": len(partitions),
                         "first partition": partitions[0] if partitions else None,
                         "last partition": partitions[-1] if partitions else None})
    return pd.DataFrame(rows, columns=["dataset", "kind", "format", "batches",
                                       "first partition", "last partition"])


@st.cache_data(ttl=10)
def batches_frame(dataset: str | None = None) -> pd.DataFrame:
    with session_factory()() as session:
        dataset_id = None
        if dataset:
            found = queries.get_dataset(session, dataset)
            dataset_id = found.id if found else -1
        rows = [{"dataset": name, "partition": b.partition, "status": b.status, "rows": b.rows,
                 "arrived at": b.arrived_at, "reason": b.reason}
                for b, name in queries.list_batches(session, dataset_id)]
    frame = pd.DataFrame(rows, columns=["dataset", "partition", "status", "rows", "arrived at", "reason"])
    return frame.sort_values(["partition", "dataset"], ascending=[False, True], kind="stable")


# ---- datasets, model outputs, monitors and pipeline pages ----------------------------------
# Queries return DataFrames (cached briefly: a person clicking around should not wait for the
# same SQL twice); commands go through monitors and clear the caches they make stale.

MAX_SERIES_POINTS = 2000
TABLE_LEVEL = "(table)"  # how table-level metrics (row_count, ...) are named in pickers
CONFIG_LOG = "config-changes.log"
WORKER_SETTING = "MONITORS_DASHBOARD_WORKER"


@st.cache_data(ttl=30)
def dataset_frame(dataset: str) -> pd.DataFrame:
    """One row: the dataset's kind, schedule, deadline and whether it is paused."""
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        rows = [] if found is None else [{
            "dataset": found.name, "kind": found.kind, "format": found.format,
            "schedule": found.schedule, "deadline_hours": found.deadline_hours,
            "paused": found.paused}]
    return pd.DataFrame(rows, columns=["dataset", "kind", "format", "schedule", "deadline_hours",
                                       "paused"])


@st.cache_data(ttl=30)
def contract_frame(dataset: str) -> pd.DataFrame:
    """The dataset's schema contract, one row per column."""
    columns = ["name", "type", "nullable", "categorical", "sensitive"]
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        contract = found.contract if found is not None else {}
    return pd.DataFrame(contract.get("columns", []), columns=columns)


@st.cache_data(ttl=30)
def metric_names_frame(dataset: str) -> pd.DataFrame:
    """The (column, metric) pairs stored for a dataset; table-level metrics have column
    "(table)"."""
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        pairs = queries.list_metric_names(session, found.id) if found is not None else []
    frame = pd.DataFrame(pairs, columns=["column", "metric"])
    frame["column"] = frame["column"].fillna(TABLE_LEVEL)
    return frame


@st.cache_data(ttl=30)
def metric_series_frame(dataset: str, column: str | None, metric: str, key: str = "",
                        max_points: int = MAX_SERIES_POINTS) -> pd.DataFrame:
    """A metric over time (partition, value), thinned on the server to `max_points`."""
    column = None if column == TABLE_LEVEL else column
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        if found is None:
            return pd.DataFrame(columns=["partition", "value"])
        series = queries.read_metric_series(session, found.id, metric, column, key=key)
    if not series.empty:
        series = series.asfreq("D")  # a day without a batch is a gap in the line, not a slope
    frame = pd.DataFrame({"partition": series.index, "value": series.to_numpy()})
    return downsample(frame, max_points)


@st.cache_data(ttl=30)
def schema_history_frame(dataset: str) -> pd.DataFrame:
    """Each run of batches with the same shape: from, to, batches, the schema fingerprint
    (short), columns; a quarantined delivery is its own row with the reason, since that is
    the day the shape broke the contract."""
    columns = ["from", "to", "batches", "status", "fingerprint", "columns", "reason"]
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        batches = [b for b, _ in queries.list_batches(session, found.id)] if found else []
    rows: list[dict] = []
    for batch in batches:
        if batch.status == BatchStatus.superseded:
            continue
        shape = (batch.status, batch.schema_fingerprint, batch.columns, batch.reason)
        last = rows[-1] if rows else None
        if last is not None and last["_shape"] == shape and batch.status == BatchStatus.ingested:
            last["to"], last["batches"] = batch.partition, last["batches"] + 1
            continue
        rows.append({"from": batch.partition, "to": batch.partition, "batches": 1,
                     "status": batch.status,
                     "fingerprint": (batch.schema_fingerprint or "")[:12] or None,
                     "columns": batch.columns, "reason": batch.reason, "_shape": shape})
    frame = pd.DataFrame(rows, columns=[*columns, "_shape"]).drop(columns="_shape")
    return frame.sort_values("from", ascending=False, kind="stable").reset_index(drop=True)


@st.cache_data(ttl=30)
def freshness_frame(dataset: str) -> pd.DataFrame:
    """Per partition: when its batch in force arrived, the delay after its day ended, and
    its state (on time, late, missing). Missing means a day between the first and the last
    delivery with no batch in force; the days after the last delivery are `overdue_days`."""
    columns = ["partition", "arrived_at", "delay_hours", "state"]
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        if found is None:
            return pd.DataFrame(columns=columns)
        deadline = found.deadline_hours
        rows = [{"partition": b.partition, "arrived_at": b.arrived_at,
                 "delay_hours": round(arrival_delay_hours(b.partition, b.arrived_at), 2)}
                for b, _ in queries.list_batches(session, found.id)
                if b.status == BatchStatus.ingested]
        last = rows[-1]["partition"] if rows else None
        missing = queries.list_missing_partitions(session, found.id, last) if last else []
    for row in rows:
        row["state"] = "late" if row["delay_hours"] > deadline else "on time"
    rows += [{"partition": day, "arrived_at": None, "delay_hours": None, "state": "missing"}
             for day in missing]
    frame = pd.DataFrame(rows, columns=columns)
    frame["partition"] = pd.to_datetime(frame["partition"])
    return frame.sort_values("partition", kind="stable").reset_index(drop=True)


# -- model outputs


@st.cache_data(ttl=30)
def output_columns_frame(dataset: str) -> pd.DataFrame:
    """The columns of a model output worth charting: numeric ones (scores: quantile bands)
    and categorical ones (predicted classes: class mix); identifiers are left out."""
    contract = contract_frame(dataset)
    rows = []
    for column in contract.itertuples():
        if column.sensitive:
            continue
        if column.type in ("string", "boolean") or column.categorical:
            rows.append({"column": column.name, "profile": "freq"})
        elif column.type in ("integer", "float"):
            rows.append({"column": column.name, "profile": "quantiles"})
    return pd.DataFrame(rows, columns=["column", "profile"])


def _column_history(dataset: str, column: str, metrics: list[str]) -> MetricHistory:
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        frame = queries.read_column_metrics(session, found.id, column, metrics) if found else \
            pd.DataFrame(columns=["partition", "metric", "key", "value"])
    return MetricHistory(frame.assign(column=column))


@st.cache_data(ttl=30)
def quantiles_frame(dataset: str, column: str) -> pd.DataFrame:
    """One row per partition: min, p01 ... p99, max, count of a numeric column."""
    history = _column_history(dataset, column, QUANTILE_KEYS)
    # days without a batch are left out: plotly's filled bands cannot break over a gap
    frame = history.quantiles(column, dt.date.max).dropna(subset=["p50"])
    return frame.rename_axis("partition").reset_index()


@st.cache_data(ttl=30)
def class_mix_frame(dataset: str, column: str) -> pd.DataFrame:
    """Per partition and class: the class's share of the batch's rows (`other` holds the
    classes past the profile's top-k)."""
    counts = _column_history(dataset, column, ["freq", "freq_other"]).categories(column, dt.date.max)
    if counts.empty:
        return pd.DataFrame(columns=["partition", "key", "share"])
    shares = counts.div(counts.sum(axis=1), axis=0)
    if "other" in shares and not (shares["other"] > 0).any():
        shares = shares.drop(columns="other")
    return (shares.rename_axis("partition").reset_index()
            .melt(id_vars="partition", var_name="key", value_name="share").dropna())


def _monitor_options(dataset: str, name: str) -> dict:
    spec = next((s for s in monitor_specs(dataset) if s.name == name), None)
    return dict(spec.options) if spec is not None else {}


@st.cache_data(ttl=600)
def drift_frame(dataset: str, column: str, profile: str,
                days: int | None = None) -> tuple[pd.DataFrame, str, float]:
    """The drift of a column against its reference window on the last `days` partitions
    (every one when None; earlier ones serve as reference), with the options of the
    dataset's `drift:<column>` monitor as a run would use them: a DataFrame (partition,
    value, limit, exceeded, detail), the measure's name, the limit. Comparing costs a few
    milliseconds per partition, so years of history are opt-in."""
    options = _monitor_options(dataset, f"drift:{column}")
    metrics = ["freq", "freq_other"] if profile == "freq" else QUANTILE_KEYS
    history = _column_history(dataset, column, metrics)
    profiles = (history.categories(column, dt.date.max) if profile == "freq"
                else history.quantiles(column, dt.date.max))
    measure = "JS distance" if profile == "freq" else "PSI"
    columns = ["partition", "value", "limit", "exceeded", "detail"]
    if profiles.empty:
        return pd.DataFrame(columns=columns), measure, float("nan")
    since = None if days is None else profiles.index.max() - pd.Timedelta(days=days - 1)
    detection = detectors.detect_drift(profiles, name=column, since=since, **options)
    if detection.band is None:
        return pd.DataFrame(columns=columns), measure, float("nan")
    band = detection.band
    findings = {pd.Timestamp(f.at): f for f in detection.findings}
    limit = float(band["upper"].iloc[-1])
    frame = pd.DataFrame({
        "partition": pd.to_datetime(band.index), "value": band["value"].to_numpy(),
        "limit": band["upper"].to_numpy(),
        "exceeded": [pd.Timestamp(at) in findings for at in band.index],
        "detail": [findings[pd.Timestamp(at)].detail if pd.Timestamp(at) in findings else ""
                   for at in band.index]})
    return frame, measure, limit


# -- monitors


def _config() -> MonitorsConfig:
    return load_config(load_settings().config_path)


def config_problem() -> str | None:
    """Why the monitors YAML on disk cannot be used (file, line and key), or None."""
    try:
        _config()
    except ConfigError as exc:
        return str(exc)
    return None


def _family(spec_name: str) -> str | None:
    """The automatic family an automatic monitor's name belongs to."""
    prefix = spec_name.split(":", 1)[0]
    return {"contract": "contract", "freshness": "freshness", "volume": "volume",
            "nulls": "nulls", "level": "levels", "categories": "categories",
            "drift": "drift"}.get(prefix)


def _everything(declared: DatasetConfig | None) -> DatasetConfig | None:
    """The declaration with every family on and every item enabled: what could watch."""
    if declared is None:
        return None
    return declared.model_copy(update={
        "automatic": AutomaticMonitors(),
        "checks": [c.model_copy(update={"enabled": True}) for c in declared.checks],
        "monitors": [m.model_copy(update={"enabled": True}) for m in declared.monitors]})


def _plans(dataset: str, config: MonitorsConfig) -> tuple[list[MonitorSpec], set[str], set[str]]:
    """Every spec that could watch the dataset, the names live now, and the automatic names."""
    with session_factory()() as session:
        found = find_dataset(session, dataset)
        name, kind, contract = found.name, found.kind, Contract.model_validate(found.contract)
    declared = config.dataset(name)
    live = {s.name for s in plan_monitors(kind, contract, declared)}
    automatic = {s.name for s in plan_monitors(kind, contract, None)}
    return plan_monitors(kind, contract, _everything(declared)), live, automatic


def monitor_specs(dataset: str) -> list[MonitorSpec]:
    """What watches the dataset now (plan_monitors over the config on disk)."""
    specs, live, _ = _plans(dataset, _config())
    return [s for s in specs if s.name in live]


@st.cache_data(ttl=10)
def monitors_frame(dataset: str) -> pd.DataFrame:
    """Every monitor of a dataset, live or disabled: automatic ones, configured ones and
    automatic ones tuned by the config (same name)."""
    config = _config()
    specs, live, automatic = _plans(dataset, config)
    declared = config.dataset(dataset)
    families = declared.automatic if declared else AutomaticMonitors()
    rows = []
    for spec in specs:
        family = _family(spec.name) if spec.name in automatic else None
        if spec.automatic:
            source = "automatic"
        else:
            source = "automatic, tuned" if spec.name in automatic else "configured"
        state = "enabled" if spec.name in live else "disabled"
        if state == "disabled" and spec.automatic and family and not getattr(families, family):
            state = f"disabled (family {family} off)"
        rows.append({"monitor": spec.name, "enabled": spec.name in live, "state": state,
                     "source": source, "kind": spec.kind, "detector": spec.detector,
                     "metric": spec.metric, "column": spec.column, "severity": spec.severity,
                     "options": json.dumps(spec.options, sort_keys=True) if spec.options else ""})
    return pd.DataFrame(rows, columns=["monitor", "enabled", "state", "source", "kind", "detector",
                                       "metric", "column", "severity", "options"])


def editable_monitor(dataset: str, name: str) -> MonitorConfig | None:
    """A metric monitor as the config would declare it (automatic ones included), for the
    edit form; None for checks and the batch-state monitors (contract, freshness)."""
    config = _config()
    declared = config.dataset(dataset)
    if declared is not None:
        for monitor in declared.monitors:
            if monitor.name == name:
                return monitor
    specs, _, _ = _plans(dataset, config)
    spec = next((s for s in specs if s.name == name), None)
    if spec is None or spec.kind != "metric" or not spec.metric:
        return None
    return MonitorConfig(name=spec.name, metric=spec.metric, column=spec.column,
                         detector=spec.detector, options=dict(spec.options), severity=spec.severity)


def _declared_or_new(config: MonitorsConfig, dataset: str) -> DatasetConfig:
    """The dataset's declaration; a dataset made from a first batch (`ingest --create`) gets
    one from its store row, so a monitor can be added to it."""
    declared = config.dataset(dataset)
    if declared is not None:
        return declared
    with session_factory()() as session:
        found = find_dataset(session, dataset)
        return DatasetConfig(name=found.name, kind=found.kind, format=found.format,
                             source=found.source, table=found.table_name,
                             partition_key=found.partition_key, schedule=found.schedule,
                             deadline_hours=found.deadline_hours)


def _write_config(dataset: str, change: Callable[[DatasetConfig], DatasetConfig], *, by: str,
                  what: str) -> str:
    """Apply `change` to the dataset's declaration in the file on disk (read just before, so
    a concurrent edit of another dataset is kept), validate the whole file, replace it
    atomically, and log who did what. Returns the new config version."""
    if not by:
        raise ValueError("changing monitors needs a name: say who you are first")
    settings = load_settings()
    config = load_config(settings.config_path)
    before = config.version_hash()
    changed = change(_declared_or_new(config, dataset).model_copy(deep=True))
    datasets = [changed if d.name == dataset else d for d in config.datasets]
    if config.dataset(dataset) is None:
        datasets.append(changed)
    new = MonitorsConfig.model_validate({**config.model_dump(mode="json"),
                                         "datasets": [d.model_dump(mode="json") for d in datasets]})
    partial = settings.config_path.with_name(settings.config_path.name + ".partial")
    save_config(new, partial)
    load_config(partial)  # what was written parses back, or the old file stays
    os.replace(partial, settings.config_path)
    after = new.version_hash()
    with (settings.home / CONFIG_LOG).open("a", encoding="utf-8") as log:
        log.write(f"{utcnow().isoformat(timespec='seconds')}\t{by}\t{dataset}\t{what}\t"
                  f"{before} -> {after}\n")
    monitors_frame.clear()
    config_log_frame.clear()
    drift_frame.clear()
    return after


def set_monitor_enabled(dataset: str, name: str, enabled: bool, *, by: str) -> str:
    """Enable or disable a monitor in the config file. A check or configured monitor flips
    its `enabled`; an automatic metric monitor is disabled by a configured one of the same
    name with `enabled: false` (removed again on enabling, when it tunes nothing); contract
    and freshness monitors are switched with their automatic family."""
    specs, _, automatic = _plans(dataset, _config())
    spec = next((s for s in specs if s.name == name), None)
    if spec is None:
        raise ValueError(f"no monitor {name!r} on dataset {dataset!r}")

    def change(declared: DatasetConfig) -> DatasetConfig:
        for check in declared.checks:
            if check.label() == name:
                check.enabled = enabled
                return declared
        for monitor in declared.monitors:
            if monitor.name == name:
                monitor.enabled = enabled
                if enabled and name in automatic and _same_as_automatic(monitor, spec, dataset):
                    declared.monitors.remove(monitor)
                return declared
        family = _family(name)
        if spec.kind in ("contract", "freshness", "missing") and family:
            setattr(declared.automatic, family, enabled)
            return declared
        if family and not getattr(declared.automatic, family):
            if not enabled:
                return declared
            setattr(declared.automatic, family, True)
            return declared
        if not enabled:
            declared.monitors.append(MonitorConfig(
                name=name, metric=spec.metric, column=spec.column, detector=spec.detector,
                options=dict(spec.options), severity=spec.severity, enabled=False))
        return declared

    return _write_config(dataset, change, by=by, what=f"{'enabled' if enabled else 'disabled'} {name}")


def _same_as_automatic(monitor: MonitorConfig, spec: MonitorSpec, dataset: str) -> bool:
    with session_factory()() as session:
        found = find_dataset(session, dataset)
        auto = {s.name: s for s in plan_monitors(found.kind,
                                                 Contract.model_validate(found.contract), None)}
    original = auto.get(monitor.name)
    return original is not None and (monitor.metric, monitor.column, monitor.detector,
                                     monitor.options, monitor.severity) == (
        original.metric, original.column, original.detector, original.options, original.severity)


def save_monitor(dataset: str, monitor: MonitorConfig, *, by: str) -> str:
    """Add or replace (by name) a configured monitor; tuning an automatic one by name."""
    def change(declared: DatasetConfig) -> DatasetConfig:
        declared.monitors = [m for m in declared.monitors if m.name != monitor.name] + [monitor]
        return declared

    return _write_config(dataset, change, by=by, what=f"saved {monitor.name} "
                         f"({monitor.detector} on {monitor.column or 'table'}.{monitor.metric} "
                         f"{json.dumps(monitor.options, sort_keys=True)})")


@st.cache_data(ttl=10)
def config_log_frame(limit: int = 20) -> pd.DataFrame:
    """The latest changes made to the monitors file from the dashboard, newest first."""
    columns = ["at", "by", "dataset", "change", "version"]
    path = load_settings().home / CONFIG_LOG
    if not path.exists():
        return pd.DataFrame(columns=columns)
    lines = path.read_text(encoding="utf-8").splitlines()[-limit:]
    rows = [dict(zip(columns, line.split("\t"))) for line in reversed(lines) if line.count("\t") == 4]
    return pd.DataFrame(rows, columns=columns)


@st.cache_data(ttl=300, show_spinner="Replaying the monitor over history...")
def backtest_frame(dataset: str, monitor_json: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The alerts a monitor (saved or edited, as MonitorConfig JSON) would have raised on
    each partition from `start` to `end`; nothing is written to the store."""
    monitor = MonitorConfig.model_validate_json(monitor_json)
    with session_factory()() as session:
        found = find_dataset(session, dataset)
        try:
            alerts = backtest(session, found, monitor, start, end)
        finally:
            session.rollback()
    rows = [{**asdict(a), "week": a.week} for a in alerts]
    frame = pd.DataFrame(rows, columns=["partition", "week", "value", "expected", "lower", "upper",
                                        "message", "dataset", "monitor", "column"])
    frame["partition"] = pd.to_datetime(frame["partition"])
    return frame


@st.cache_data(ttl=30)
def noise_frame(dataset: str | None = None) -> pd.DataFrame:
    """Per monitor: alerts, alerts per week over the dataset's delivered span, how many are
    unresolved, and the share of those a person resolved (`judged`) that were false
    positives; auto-resolved alerts passed on their own and say nothing either way."""
    with session_factory()() as session:
        counts = queries.count_alerts_by_monitor(session)
        spans = queries.partition_spans(session)
    if dataset is not None:
        counts = counts[counts["dataset"] == dataset]
    weeks = counts["dataset"].map(
        lambda name: max(1.0, ((spans[name][1] - spans[name][0]).days + 1) / 7) if name in spans else 1.0)
    frame = counts.assign(
        per_week=(counts["alerts"] / weeks).round(2),
        false_positive_share=(counts["false_positive"] / counts["judged"].where(counts["judged"] > 0)).round(3))
    return frame[["dataset", "monitor", "alerts", "per_week", "unresolved", "judged",
                  "false_positive", "false_positive_share"]].sort_values(
        ["per_week", "dataset", "monitor"], ascending=[False, True, True], kind="stable").reset_index(drop=True)


# -- pipeline


@st.cache_data(ttl=10)
def schedules_frame() -> pd.DataFrame:
    """Per dataset: its cron, paused or not, the next time the schedule fires (none while
    paused), the watermark (last partition a successful run covered), and its queue."""
    now = utcnow()
    columns = ["dataset", "schedule", "paused", "next_run_at", "watermark", "queued", "running",
               "last_status", "last_finished_at"]
    rows = []
    with session_factory()() as session:
        runs = pd.DataFrame(queue.list_runs(session, limit=2000))
        for d in queries.list_datasets(session):
            try:
                next_at = None if d.paused else cron_trigger(d.schedule).get_next_fire_time(None, now)
            except ValueError:
                next_at = None
            mine = runs[runs["dataset"] == d.name] if not runs.empty else runs
            finished = mine[mine["finished_at"].notna()] if not mine.empty else mine
            rows.append({
                "dataset": d.name, "schedule": d.schedule, "paused": d.paused,
                "next_run_at": next_at, "watermark": queue.watermark(session, d),
                "queued": int((mine["status"] == "queued").sum()) if not mine.empty else 0,
                "running": int((mine["status"] == "running").sum()) if not mine.empty else 0,
                "last_status": finished["status"].iloc[0] if not finished.empty else None,
                "last_finished_at": pd.Timestamp(finished["finished_at"].iloc[0])
                if not finished.empty else None})
    return pd.DataFrame(rows, columns=columns)


def runs_frame(dataset: str | None = None, status: str | None = None, limit: int = 200) -> pd.DataFrame:
    """The latest runs first, with duration and stage timings; not cached, since progress
    is what a person watches here."""
    columns = ["id", "dataset", "status", "trigger", "partition_from", "partition_to", "progress",
               "progress_done", "progress_total", "requested_by", "requested_at", "started_at",
               "finished_at", "duration_s", "stages", "error"]
    with session_factory()() as session:
        runs = queue.list_runs(session, dataset=dataset, status=status, limit=limit)
    frame = pd.DataFrame(runs)
    if frame.empty:
        return pd.DataFrame(columns=columns)
    for column in ("requested_at", "started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["duration_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds().round(2)
    frame["progress"] = (frame["progress_done"] / frame["progress_total"].where(frame["progress_total"] > 0)).fillna(0.0)
    frame["stages"] = frame["stages"].map(
        lambda stages: ", ".join(f"{k} {v:.2f}s" for k, v in (stages or {}).items()))
    return frame[columns]


def active_runs_frame() -> pd.DataFrame:
    """Queued and running runs, oldest first, however long the history behind them."""
    frames = [runs_frame(status=status, limit=1000) for status in ("running", "queued")]
    frames = [f for f in frames if not f.empty]
    if not frames:
        return runs_frame(status="queued", limit=0)
    return pd.concat(frames).sort_values("id").reset_index(drop=True)


def run_log(run_id: int) -> str:
    with session_factory()() as session:
        run = queue.get_run(session, run_id)
        return "" if run is None else (run.log or "")


def set_paused(dataset: str, paused: bool, *, by: str) -> None:
    """Pause or resume a dataset's schedule (the worker's next reconcile drops or adds it)."""
    if not by:
        raise ValueError("pausing a schedule needs a name: say who you are first")
    with session_factory().begin() as session:
        queries.set_dataset_paused(session, find_dataset(session, dataset).id, paused)
    schedules_frame.clear()
    dataset_frame.clear()


def request_run(dataset: str, start: dt.date, end: dt.date, *, by: str) -> int:
    """Queue a run of one partition (manual) or a range (backfill); the run's id. A request
    identical to one still queued returns that one."""
    if not by:
        raise ValueError("a run request needs a name: say who you are first")
    trigger = queue.RunTrigger.manual if start == end else queue.RunTrigger.backfill
    with session_factory().begin() as session:
        run = queue.request_run(session, find_dataset(session, dataset), start, end, trigger=trigger, by=by)
        run_id = run.id
    schedules_frame.clear()
    return run_id


def cancel_run(run_id: int, *, by: str) -> None:
    """Cancel a queued run; ValueError (with the reason) for a running or finished one."""
    with session_factory().begin() as session:
        queue.cancel(session, run_id, by)
    schedules_frame.clear()


def _stop_worker(worker: Worker | None) -> None:
    if worker is not None:
        worker.stop(timeout=10)


@st.cache_resource(on_release=_stop_worker)
def _hosted_worker() -> Worker | None:
    return Worker(session_factory(), load_settings()).start_background()


def hosted_worker_state() -> str:
    """Start the in-process worker when the setting asks for it (off by default: a second
    server process or a cache clear would otherwise host another, PLATFORM.md). Returns a
    sentence for the page."""
    if os.environ.get(WORKER_SETTING) != "1":
        return (f"No worker runs inside the dashboard ({WORKER_SETTING} is not 1): queued runs "
                "wait for `python -m monitors worker`.")
    worker = _hosted_worker()
    if worker is None:
        return "Another process hosts the worker; queued runs go to it."
    return f"This dashboard hosts the worker ({worker.worker_id}): queued runs start here."


# ---- overview, alerts and alert detail (triage) -------------------------------------------
# The alerts table is cached under a `generation` the page owns and moves after the person's
# own actions or when they ask for new alerts: the rows someone is selecting from must not
# shift under them (PLATFORM.md). Live parts of the pages read the uncached counts.

ALERTS_PAGE_SIZE = 50
UNRESOLVED = ("open", "acknowledged")
HEALTH_LEVELS = ("critical", "warning", "info", "ok")  # worst first
MASK = "••••"
RESOLUTIONS = lifecycle.RESOLUTIONS


def expected_partition(today: dt.date | None = None) -> dt.date:
    """The partition a daily pipeline delivers today: yesterday's, in UTC."""
    return (today or utcnow().date()) - dt.timedelta(days=1)


def _label_set(values) -> tuple:
    # pandas 3 stores a missing column label as NaN in a string column; the store has NULL
    return tuple(None if v is None or (isinstance(v, float) and v != v) else v for v in values)


def _muted_label_sets(session: Session, labels: pd.DataFrame, now: dt.datetime) -> set[tuple]:
    active = mutes.active_mutes(session, now)
    if not active or labels.empty:
        return set()
    muted = set()
    for values in labels[list(queries.LABELS)].itertuples(index=False):
        label_set = _label_set(values)
        if mutes.covering_mute(dict(zip(queries.LABELS, label_set)), active, now) is not None:
            muted.add(label_set)
    return muted


def _with_muted(frame: pd.DataFrame, muted: set[tuple]) -> pd.DataFrame:
    frame = frame.copy()
    # bool even when empty: an empty object column used as a mask selects columns instead
    frame["muted"] = pd.Series([_label_set(v) in muted
                                for v in frame[list(queries.LABELS)].itertuples(index=False)],
                               index=frame.index, dtype=bool)
    return frame


@st.cache_data(ttl=15)
def unresolved_labels_frame() -> pd.DataFrame:
    """Open and acknowledged alerts per label set and status, with whether a mute covers
    them now."""
    with session_factory()() as session:
        labels = queries.count_alerts_by_labels(session, UNRESOLVED)
        return _with_muted(labels, _muted_label_sets(session, labels, utcnow()))


def status_counts() -> dict[str, int]:
    """Open and acknowledged alerts nobody muted, and the muted ones."""
    labels = unresolved_labels_frame()
    loud = labels[~labels["muted"]]
    return {"open": int(loud.loc[loud["status"] == "open", "alerts"].sum()),
            "acknowledged": int(loud.loc[loud["status"] == "acknowledged", "alerts"].sum()),
            "muted": int(labels.loc[labels["muted"], "alerts"].sum())}


@st.cache_data(ttl=15)
def health_frame() -> pd.DataFrame:
    """One row per dataset: its health (the worst severity among its loud unresolved
    alerts) and its alert counts."""
    columns = ["dataset", "health", "open", "acknowledged", "muted", "critical", "warning",
               "info", "last alert seen"]
    with session_factory()() as session:
        names = [d.name for d in queries.list_datasets(session)]
    labels = unresolved_labels_frame()
    rows = []
    for name in names:
        mine = labels[labels["dataset"] == name]
        loud = mine[~mine["muted"]]
        by_severity = loud.groupby("severity")["alerts"].sum()
        worst = next((s for s in charts.SEVERITY_ORDER if by_severity.get(s, 0) > 0), "ok")
        rows.append({"dataset": name, "health": worst,
                     "open": int(loud.loc[loud["status"] == "open", "alerts"].sum()),
                     "acknowledged": int(loud.loc[loud["status"] == "acknowledged", "alerts"].sum()),
                     "muted": int(mine.loc[mine["muted"], "alerts"].sum()),
                     **{s: int(by_severity.get(s, 0)) for s in charts.SEVERITY_ORDER},
                     "last alert seen": mine["last_seen_at"].max() if not mine.empty else None})
    frame = pd.DataFrame(rows, columns=columns)
    rank = {label: i for i, label in enumerate(HEALTH_LEVELS)}
    return frame.sort_values("health", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)


@st.cache_data(ttl=30)
def firings_per_day_frame(days: int = 180) -> pd.DataFrame:
    """Alert firings per partition day and severity, over the last `days` days of data."""
    with session_factory()() as session:
        frame = queries.count_firings_per_day(session, utcnow().date() - dt.timedelta(days=days))
    frame["partition"] = pd.to_datetime(frame["partition"])
    return frame


@st.cache_data(ttl=30)
def noisiest_monitors_frame(limit: int = 10) -> pd.DataFrame:
    with session_factory()() as session:
        frame = queries.count_alerts_by_monitor(session)
    frame = frame.sort_values(["alerts", "unresolved", "dataset", "monitor"],
                              ascending=[False, False, True, True], kind="stable")
    return frame[["dataset", "monitor", "alerts", "unresolved", "false_positive",
                  "last_partition"]].head(limit).reset_index(drop=True)


@st.cache_data(ttl=15)
def partition_batches_frame(partition: dt.date) -> pd.DataFrame:
    """Each dataset's delivery for one partition: arrived, late, quarantined, missing, or
    pending (its deadline has not passed yet); paused datasets say so."""
    now = utcnow()
    with session_factory()() as session:
        batches = queries.list_partition_batches(session, partition)
    rows = []
    for name, group in batches.groupby("dataset", sort=True):
        deadline_hours = float(group["deadline_hours"].iloc[0])
        ingested = group[group["status"] == BatchStatus.ingested.value]
        quarantined = group[group["status"] == BatchStatus.quarantined.value]
        row = {"dataset": name, "state": None, "rows": None, "arrived at": None,
               "hours after day end": None, "reason": None}
        if not ingested.empty:
            batch = ingested.iloc[-1]
            delay = arrival_delay_hours(partition, batch["arrived_at"].to_pydatetime()
                                        if hasattr(batch["arrived_at"], "to_pydatetime")
                                        else batch["arrived_at"])
            row |= {"state": "late" if delay > deadline_hours else "arrived",
                    "rows": int(batch["rows"]) if pd.notna(batch["rows"]) else None,
                    "arrived at": batch["arrived_at"], "hours after day end": round(delay, 1)}
        elif not quarantined.empty:
            batch = quarantined.iloc[-1]
            row |= {"state": "quarantined", "arrived at": batch["arrived_at"],
                    "reason": batch["reason"]}
        else:
            due = dt.datetime.combine(partition + dt.timedelta(days=1), dt.time(), dt.UTC) \
                + dt.timedelta(hours=deadline_hours)
            row["state"] = "missing" if now > due else "pending"
            row["reason"] = f"due by {due:%Y-%m-%d %H:%M} UTC"
        if bool(group["paused"].iloc[0]):
            row["reason"] = "schedule paused" + (f"; {row['reason']}" if row["reason"] else "")
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "state", "rows", "arrived at",
                                       "hours after day end", "reason"])


def last_runs_frame(limit: int = 8) -> pd.DataFrame:
    """Not cached: a run someone just asked for should show up at once."""
    columns = ["id", "dataset", "status", "trigger", "partitions", "requested_by", "finished_at",
               "error"]
    with session_factory()() as session:
        runs = queue.list_runs(session, limit=limit)
    rows = [{**{k: r[k] for k in columns if k in r},
             "partitions": r["partition_from"] if r["partition_from"] == r["partition_to"]
             else f"{r['partition_from']} .. {r['partition_to']}"} for r in runs]
    return pd.DataFrame(rows, columns=columns)


@st.cache_data(ttl=60)
def alert_filter_choices() -> dict[str, list[str]]:
    """The datasets and monitors that have alerts, for the filters."""
    with session_factory()() as session:
        labels = queries.count_alerts_by_labels(session)
    return {"datasets": sorted(labels["dataset"].dropna().unique().tolist()),
            "monitors": sorted(labels["monitor"].dropna().unique().tolist())}


@st.cache_data(ttl=600)
def alerts_table(statuses: tuple[str, ...] = (), severities: tuple[str, ...] = (),
                 datasets: tuple[str, ...] = (), monitors: tuple[str, ...] = (),
                 seen_from: dt.date | None = None, seen_to: dt.date | None = None,
                 show_muted: bool = False, only_muted: bool = False, page: int = 0,
                 generation: int = 0) -> tuple[pd.DataFrame, int]:
    """One page of alerts (last seen first) and how many match in all. Paged in SQL; muted
    alerts are left out in SQL too, by their label sets. `generation` only keys the cache."""
    del generation
    with session_factory()() as session:
        labels = queries.count_alerts_by_labels(session)
        muted = _muted_label_sets(session, labels, utcnow())
        alert_filter = queries.AlertFilter(
            statuses=statuses, severities=severities, datasets=datasets, monitors=monitors,
            seen_from=seen_from, seen_to=seen_to,
            hidden=() if show_muted else tuple(sorted(muted, key=repr)),
            only=tuple(sorted(muted, key=repr)) if show_muted and only_muted else None)
        total = queries.count_alerts(session, alert_filter)
        frame = queries.list_alert_page(session, alert_filter, limit=ALERTS_PAGE_SIZE,
                                        offset=page * ALERTS_PAGE_SIZE)
    return _with_muted(frame, muted), total


def latest_alert_id() -> int:
    with session_factory()() as session:
        return queries.latest_alert_id(session)


def alerts_after(alert_id: int) -> tuple[int, pd.DataFrame]:
    """Uncached, for the live banner: alerts opened after `alert_id`, the newest few."""
    with session_factory()() as session:
        return queries.list_alerts_after(session, alert_id)


def _each(ids, act) -> tuple[list[int], list[str]]:
    """Apply `act(session, id)` to every alert; an alert a rule refuses (already
    acknowledged, changed by someone else since it was loaded) is reported, the others
    still go through. One transaction per alert: it holds one alert's lock at a time, so
    it can never wait in a cycle with a run that holds many."""
    done, refused = [], []
    for alert_id in ids:
        try:
            with session_factory().begin() as session:
                act(session, int(alert_id))
        except ValueError as exc:
            refused.append(str(exc))
        else:
            done.append(int(alert_id))
    _triage_changed()
    return done, refused


def acknowledge_alerts(ids, *, by: str, note: str | None = None,
                       seen: dict[int, str] | None = None) -> tuple[list[int], list[str]]:
    """`seen`: alert id -> the status the person saw; an alert whose status changed since
    is refused with who changed it and when."""
    seen = seen or {}
    return _each(ids, lambda s, i: lifecycle.acknowledge(s, i, by=by, note=note or None,
                                                         seen=seen.get(i)))


def resolve_alerts(ids, *, by: str, resolution: str, note: str | None = None,
                   seen: dict[int, str] | None = None) -> tuple[list[int], list[str]]:
    """`seen` as for `acknowledge_alerts`."""
    seen = seen or {}
    return _each(ids, lambda s, i: lifecycle.resolve(s, i, by=by, resolution=resolution,
                                                     note=note or None, seen=seen.get(i)))


def comment_alert(alert_id: int, *, by: str, note: str) -> None:
    with session_factory().begin() as session:
        lifecycle.comment(session, alert_id, by=by, note=note)
    _triage_changed()


def mute_preview(matchers: dict[str, str | None]) -> pd.DataFrame:
    """The unresolved alerts a mute with these matchers would cover (ValueError for
    matchers a mute would refuse)."""
    with session_factory()() as session:
        covered = mutes.preview(session, matchers, utcnow())
    return pd.DataFrame(covered, columns=["id", "dataset", "column", "monitor", "detector",
                                          "severity", "status", "partition", "message"])


def add_mute(matchers: dict[str, str | None], *, reason: str | None, by: str,
             ends_at: dt.datetime | None) -> int:
    """Store a mute; ValueError (and nothing stored) without a reason, an end time, ..."""
    with session_factory().begin() as session:
        mute = mutes.add_mute(session, matchers=matchers, reason=reason, by=by, ends_at=ends_at,
                              now=utcnow())
        mute_id = mute.id
    _triage_changed()
    return mute_id


def _triage_changed() -> None:
    # the table itself is keyed by the page's generation; the counts are global
    unresolved_labels_frame.clear()
    health_frame.clear()
    alert_filter_choices.clear()


@st.cache_data(ttl=600)
def alert_document(alert_id: int, generation: int = 0) -> dict | None:
    """The alert with its events and firings, and its dataset's sensitive columns; None
    when there is no such alert."""
    del generation
    with session_factory()() as session:
        try:
            document = lifecycle.get_alert(session, alert_id)
        except ValueError:
            return None
        contract = Contract.model_validate(find_dataset(session, document["dataset"]).contract)
    document["sensitive"] = [c.name for c in contract.columns if c.sensitive]
    return document


def _alert_spec(dataset, monitor: str) -> MonitorSpec | None:
    specs = plan_monitors(dataset.kind, Contract.model_validate(dataset.contract),
                          _config().dataset(dataset.name))
    return next((s for s in specs if s.name == monitor), None)


@st.cache_data(ttl=120)
def alert_history(alert_id: int) -> dict | None:
    """What the alert's chart shows: the series its monitor judged (`series`, `label`), the
    expected `band` over it, the values it fired on (`anomalies`), `breakouts` (at, before,
    after), constant `thresholds` and a `note` saying what is drawn. Monitors without a
    metric of their own (freshness, contract, checks) get the row count as context."""
    document = alert_document(alert_id)
    if document is None:
        return None
    with session_factory()() as session:
        dataset = find_dataset(session, document["dataset"])
        spec = _alert_spec(dataset, document["monitor"])
        options = dict(spec.options) if spec else {}
        key = str(options.pop("key", ""))
        column, band, note = document["column"], None, None
        if spec is not None and spec.metric and spec.detector != "drift" and spec.metric != "freq":
            metric = spec.metric
        elif spec is not None and spec.detector == "drift" and spec.metric == "quantiles":
            metric, key = "p50", ""
            low = queries.read_metric_series(session, dataset.id, "p05", column)
            high = queries.read_metric_series(session, dataset.id, "p95", column)
            band = pd.DataFrame({"lower": low, "upper": high}).asfreq("D")
            band["expected"] = band[["lower", "upper"]].mean(axis=1)
            note = "the median with the middle 90% of values shaded (p05 to p95)"
        else:
            metric, column, key = "row_count", None, ""
            note = "rows per batch, for context: this monitor has no metric series of its own"
        series = queries.read_metric_series(session, dataset.id, metric, column, key)
    if not series.empty:
        series = series.asfreq("D")
    breakouts, thresholds, flagged = [], {}, pd.DatetimeIndex([])
    detector = spec.detector if spec else document["detector"]
    try:
        if series.notna().sum() >= 3 and note is None:
            if detector == "anomalies":
                found = detectors.detect_anomalies(series, **options)
                band = found.band
                flagged = pd.DatetimeIndex([pd.Timestamp(f.at) for f in found.findings])
                note = "expected band: the anomaly detector refitted over the whole history shown"
            elif detector in ("proportional", "absolute"):
                found = getattr(detectors, f"{detector}_threshold")(series, **options)
                band = found.band if detector == "proportional" else None
                thresholds = ({k: options.get(k) for k in ("lower", "upper")}
                              if detector == "absolute" else {})
                note = "the band each batch was tested against" if band is not None else None
            elif detector == "breakouts":
                breakouts = [{"at": f.at, "before": f.before, "after": f.after}
                             for f in detectors.detect_breakouts(series, **options).findings]
                note = ("dashed lines: where a new level begins; flat lines: the level before "
                        "and after it")
    except (ValueError, TypeError) as exc:  # an option the detector refuses: draw without a band
        note = f"no band drawn: {exc}"
    evidence = document.get("evidence") or {}
    if detector == "breakouts" and evidence.get("breakout_at"):
        at = pd.Timestamp(evidence["breakout_at"])
        if all(pd.Timestamp(b["at"]) != at for b in breakouts):
            breakouts.append({"at": at, "before": evidence.get("before"),
                              "after": evidence.get("after")})
    fired = pd.DatetimeIndex([pd.Timestamp(f["partition"]) for f in document["firings"]])
    anomalies = series.reindex(fired).dropna() if not series.empty else pd.Series(dtype=float)
    # what the detector flags elsewhere in the history: other alerts, or ones since resolved
    others = series.reindex(flagged.difference(fired)).dropna() if len(flagged) else None
    label = metric if column is None else f"{column} · {metric}"
    return {"series": series, "band": band, "anomalies": anomalies, "others": others,
            "breakouts": breakouts,
            "thresholds": thresholds, "label": label + (f" [{key}]" if key else ""), "note": note}


@st.cache_data(ttl=300)
def alert_decomposition(alert_id: int) -> pd.DataFrame | None:
    """The alert's series split into trend, season and remainder (seasonal_adjust)."""
    history = alert_history(alert_id)
    if history is None or history["series"].notna().sum() < 3:
        return None
    series = history["series"]
    return seasonal_adjust(series, find_periods(series) or None)


def masked_examples(document: dict) -> pd.DataFrame:
    """A static check's example rows, with the contract's sensitive columns masked (the
    check masks them when it runs; this guards rows stored before a column was marked)."""
    examples = pd.DataFrame((document.get("evidence") or {}).get("examples") or [])
    for column in document.get("sensitive", []):
        if column in examples.columns:
            examples[column] = MASK
    return examples


def rerun_alert_partition(alert_id: int, *, by: str, partition: str | None = None) -> int:
    """Queue a run of the alert's dataset for its partition, and note it on the alert.
    `partition`: the one the person saw on the alert; a run that fired on a later one
    since must not redirect their rerun."""
    with session_factory().begin() as session:
        document = lifecycle.get_alert(session, alert_id)
        partition = partition or document["partition"]
        if not partition:
            raise ValueError(f"alert {alert_id} has no partition to rerun")
        partition = dt.date.fromisoformat(partition)
        run = queue.request_run(session, find_dataset(session, document["dataset"]), partition,
                                partition, trigger=queue.RunTrigger.manual, by=by)
        lifecycle.note_rerun_requested(session, alert_id, by=by, run_id=run.id)
        run_id = run.id
    return run_id


def run_state(run_id: int) -> dict | None:
    """Uncached: a run's status and progress, for a live fragment."""
    with session_factory()() as session:
        run = queue.get_run(session, run_id)
        if run is None:
            return None
        return {"id": run.id, "status": run.status, "progress_done": run.progress_done,
                "progress_total": run.progress_total, "error": run.error,
                "finished_at": run.finished_at}
