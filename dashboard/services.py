"""The dashboard's one door to the system: cached wrappers that return DataFrames, and
commands passed through to monitors. The domain work lives in Streamlit-free modules the CLI
reaches too (monitors.judge.explain, monitors.judge.admin, monitors.intake.delivery); pages never touch the
store directly."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import asdict

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from dashboard.metric_charts import downsample
from monitors.config import DETECTORS, ConfigError, MonitorConfig, MonitorsConfig  # noqa: F401
from monitors.contract import Contract
from monitors.datasets import find_dataset
from monitors.errors import MonitorsError, NotFound
from monitors.intake import delivery
from monitors.judge import admin, baselines, explain, performance, provenance
from monitors.judge.backtest import backtest
from monitors.lifecycle import alerts as lifecycle
from monitors.lifecycle import mutes, muting
from monitors.pipeline import queue, stages
from monitors.pipeline.run_config import config_for_runs
from monitors.pipeline.worker import Worker
from monitors.settings import load_settings
from store import queries
from store.engine import StoreFault, describe_fault, open_store
from store.models import UNRESOLVED, AlertStatus, Severity, StageState, utcnow

# DETECTORS and MonitorConfig are passed on to the monitors page: its edit form is built from them


@st.cache_resource
def session_factory() -> sessionmaker[Session]:
    _, sessions = open_store(load_settings().db_url)
    return sessions


def store_fault(exc: BaseException) -> StoreFault | None:
    """The one-line fault of the store that `exc` stands for, or None (store.engine)."""
    return describe_fault(exc, load_settings().db_url)


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
    frame["rows"] = frame["rows"].astype("Int64")  # a quarantined batch has none: not 2959.0
    return frame.sort_values(["partition", "dataset"], ascending=[False, True], kind="stable")


# ---- datasets, model outputs, monitors and pipeline pages ----------------------------------
# Queries return DataFrames (cached briefly: a person clicking around should not wait for the
# same SQL twice); commands go through monitors and clear the caches they make stale.

MAX_SERIES_POINTS = 2000
TABLE_LEVEL = "(table)"  # how table-level metrics (row_count, ...) are named in pickers
EVERY_COLUMN = admin.EVERY_COLUMN  # a reference pinned for every drift monitor of a dataset
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
    """Each run of batches with the same shape, newest first (monitors.intake.delivery)."""
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        rows = delivery.list_schema_runs(session, found) if found is not None else []
    frame = pd.DataFrame(rows, columns=["from", "to", "batches", "status", "fingerprint",
                                        "columns", "reason"])
    frame["columns"] = frame["columns"].astype("Int64")
    return frame.sort_values("from", ascending=False, kind="stable").reset_index(drop=True)


@st.cache_data(ttl=30)
def freshness_frame(dataset: str) -> pd.DataFrame:
    """Per partition: when its batch in force arrived, the delay after its day ended, and
    its state (on time, late, missing, pending) as monitors.intake.delivery derives it."""
    columns = ["partition", "arrived_at", "delay_hours", "state"]
    with session_factory()() as session:
        found = queries.get_dataset(session, dataset)
        found_deliveries = delivery.list_dataset_deliveries(session, found, utcnow()) if found else []
    frame = pd.DataFrame([{"partition": d.partition, "arrived_at": d.arrived_at,
                           "delay_hours": d.hours_after_day_end,
                           "state": "on time" if d.state == "arrived" else str(d.state)}
                          for d in found_deliveries], columns=columns)
    frame["partition"] = pd.to_datetime(frame["partition"])
    return frame


# -- model outputs


@st.cache_data(ttl=30)
def output_columns_frame(dataset: str) -> pd.DataFrame:
    """A model output's columns worth charting, with their profile (monitors.judge.explain)."""
    with session_factory()() as session:
        contract = Contract.model_validate(find_dataset(session, dataset).contract)
    return pd.DataFrame(explain.chart_profiles(contract), columns=["column", "profile"])


@st.cache_data(ttl=30)
def quantiles_frame(dataset: str, column: str) -> pd.DataFrame:
    """One row per partition: min, p01 ... p99, max, count of a numeric column."""
    with session_factory()() as session:
        return explain.quantile_history(session, find_dataset(session, dataset).id, column)


@st.cache_data(ttl=30)
def class_mix_frame(dataset: str, column: str) -> pd.DataFrame:
    """Per partition and class: the class's share of the batch's rows."""
    with session_factory()() as session:
        return explain.class_shares(session, find_dataset(session, dataset).id, column)


@st.cache_data(ttl=600)
def drift_frame(dataset: str, column: str, profile: str,
                days: int | None = None) -> tuple[pd.DataFrame, str, float]:
    """A column's drift over the last `days` partitions (monitors.judge.explain.drift_history):
    the frame, the measure's name, the limit. Years of history are opt-in: a few ms each."""
    with session_factory()() as session:
        return explain.drift_history(session, _config(), dataset, column, profile, days)


@st.cache_data(ttl=30)
def performance_frame(dataset: str) -> pd.DataFrame | None:
    """Per partition and model version (None: all together): realised figures, the estimate
    and its band (monitors.judge.performance); None when the model output has no labels."""
    with session_factory()() as session:
        model = find_dataset(session, dataset)
        if performance.link_of(model) is None:
            return None
        return performance.performance_frame(session, model)


@st.cache_data(ttl=30)
def reliability_frame(dataset: str, partition: dt.date, version: str = "") -> pd.DataFrame:
    """One partition's reliability curve: per score bin, rows, mean score, positive rate."""
    with session_factory()() as session:
        return performance.read_reliability(session, find_dataset(session, dataset), partition,
                                            version)


# -- monitors (monitors.judge.admin owns the listing, the writes and their audit)


def _config() -> MonitorsConfig:
    """The monitors YAML, parsed again only when the file changes (as a run reads it)."""
    return config_for_runs(load_settings())[0]


def config_problem() -> str | None:
    """Why the monitors YAML on disk cannot be used (file, line and key), or None."""
    try:
        _config()
    except ConfigError as exc:
        return str(exc)
    return None


@st.cache_data(ttl=10)
def monitors_frame(dataset: str) -> pd.DataFrame:
    """Every monitor of a dataset, live or disabled, with its state and source."""
    with session_factory()() as session:
        rows = admin.list_monitors(session, _config(), dataset)
    return pd.DataFrame(rows, columns=admin.MONITOR_FIELDS)


def editable_monitor(dataset: str, name: str) -> MonitorConfig | None:
    with session_factory()() as session:
        return admin.editable_monitor(session, _config(), dataset, name)


@st.cache_data(ttl=30)
def skipped_columns_frame(dataset: str) -> pd.DataFrame:
    """The columns automatic watching leaves out, why, and what still watches them."""
    with session_factory()() as session:
        rows = admin.skipped_columns(session, _config(), dataset)
    return pd.DataFrame(rows, columns=admin.SKIPPED_FIELDS)


@st.cache_data(ttl=30)
def contract_columns(dataset: str) -> list[str]:
    """The dataset's column names, in its contract's order."""
    with session_factory()() as session:
        found = find_dataset(session, dataset)
        return [c["name"] for c in (found.contract or {}).get("columns", [])]


@st.cache_data(ttl=10)
def references_frame(dataset: str) -> pd.DataFrame:
    """The dataset's pinned drift references: as declared, and the dates they stand for."""
    with session_factory()() as session:
        rows = admin.pinned_references(session, _config(), dataset)
    return pd.DataFrame(rows, columns=admin.REFERENCE_FIELDS)


def pin_reference(dataset: str, start: dt.date, end: dt.date, column: str | None, *,
                  by: str) -> str:
    """Pin a drift reference in the monitors YAML (audited); the new config version."""
    with session_factory().begin() as session:
        version = admin.pin_reference(session, load_settings(), dataset, start, end,
                                      column=column, by=by)
    _config_changed()
    return version


def unpin_reference(dataset: str, column: str | None, *, by: str) -> str:
    with session_factory().begin() as session:
        version = admin.unpin_reference(session, load_settings(), dataset, column=column, by=by)
    _config_changed()
    return version


def _config_changed() -> None:
    monitors_frame.clear()
    config_log_frame.clear()
    drift_frame.clear()
    references_frame.clear()
    skipped_columns_frame.clear()


def set_monitor_enabled(dataset: str, name: str, enabled: bool, *, by: str) -> str:
    """Write the change to the monitors YAML (audited); the new config version."""
    with session_factory().begin() as session:  # the new config version is kept
        version = admin.set_monitor_enabled(session, load_settings(), dataset, name, enabled, by=by)
    _config_changed()
    return version


def save_monitor(dataset: str, monitor: MonitorConfig, *, by: str) -> str:
    """Add or replace a configured monitor (audited; Invalid and nothing written when it
    does not validate); the new config version."""
    with session_factory().begin() as session:  # the new config version is kept
        version = admin.save_monitor(session, load_settings(), dataset, monitor, by=by)
    _config_changed()
    return version


@st.cache_data(ttl=10)
def config_log_frame(limit: int = 20) -> pd.DataFrame:
    """The latest changes made to the monitors file from the dashboard, newest first."""
    return pd.DataFrame(admin.list_config_changes(load_settings(), limit), columns=admin.CHANGE_FIELDS)


@st.cache_data(ttl=300, show_spinner="Replaying the monitor over history...")
def backtest_frame(dataset: str, monitor_json: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The alerts a monitor (saved or edited, as MonitorConfig JSON) would have raised on
    each partition from `start` to `end`; nothing is written to the store."""
    monitor = MonitorConfig.model_validate_json(monitor_json)
    with session_factory()() as session:
        found = find_dataset(session, dataset)
        try:
            alerts = backtest(session, found, monitor, start, end, config=_config())
        finally:
            session.rollback()
    rows = [{**asdict(a), "week": a.week} for a in alerts]
    frame = pd.DataFrame(rows, columns=["partition", "week", "value", "expected", "lower", "upper",
                                        "message", "dataset", "monitor", "column"])
    frame["partition"] = pd.to_datetime(frame["partition"])
    return frame


@st.cache_data(ttl=30)
def noise_frame(dataset: str | None = None) -> pd.DataFrame:
    """Per monitor: alerts per week, unresolved, false-positive share (monitors.judge.admin)."""
    with session_factory()() as session:
        return admin.monitor_noise(session, dataset)


PAGE_SIZE = 50  # rows per page of a long table (alerts, stages): dashboard.paging


# -- pipeline


def schedules_frame() -> pd.DataFrame:
    """Per dataset: cron, paused, next run, watermark and queue (monitors.pipeline.queue), as of the
    queue's current state."""
    with session_factory()() as session:
        marker = queries.read_pipeline_marker(session)
    return _schedules_frame(marker)


@st.cache_data(ttl=60)  # the next fire time moves with the clock
def _schedules_frame(marker: str) -> pd.DataFrame:
    del marker  # keys the cache
    with session_factory()() as session:
        frame = pd.DataFrame(queue.list_schedules(session, utcnow()), columns=[
            "dataset", "schedule", "paused", "next_run_at", "watermark", "queued", "running",
            "last_status", "last_finished_at"])
    frame["last_finished_at"] = pd.to_datetime(frame["last_finished_at"], utc=True, format="ISO8601")
    return frame


def runs_frame(dataset: str | None = None, status: str | None = None, limit: int = 200) -> pd.DataFrame:
    """The latest runs first, with duration and stage timings; not cached, since progress
    is what a person watches here."""
    columns = ["id", "dataset", "status", "trigger", "partition_from", "partition_to", "progress",
               "progress_done", "progress_total", "requested_by", "requested_at", "started_at",
               "finished_at", "duration_s", "stages", "error", "config_version", "code_version"]
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


def run_details(run_id: int) -> dict | None:
    """A run with its input files' fingerprints, config version and code version
    (monitors.judge.provenance.run_details); None for no such run."""
    with session_factory()() as session:
        try:
            return provenance.run_details(session, run_id)
        except NotFound:
            return None


def judged_on_line(document: dict) -> str | None:
    """"judged on 26 points ... under config v14, detector anomalies {...}" for an alert."""
    return provenance.describe(document.get("judged_on"))


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
    return run_id


def cancel_run(run_id: int, *, by: str) -> None:
    """Cancel a queued run; ValueError (with the reason) for a running or finished one."""
    with session_factory().begin() as session:
        queue.cancel(session, run_id, by)


STAGE_COLUMNS = ["dataset", "partition", "stage", "state", "held_by", "attempts", "exit_code",
                 "note", "started_at", "finished_at", "log_tail"]
STAGE_STATES = tuple(s.value for s in StageState)


def stages_page(datasets: tuple[str, ...] = (), states: tuple[str, ...] = (),
                page: int = 0) -> tuple[pd.DataFrame, int, dict[str, int]]:
    """One page of stage runs (monitors.pipeline.stages.stage_page): failed, held, running,
    queued, overridden first, then the newest partition, each partition's stages in order;
    with how many match in all and how many of those are in each state. Not cached: a
    person watches them move."""
    with session_factory()() as session:
        found = stages.stage_page(session, datasets=datasets, states=states, limit=PAGE_SIZE,
                                  offset=page * PAGE_SIZE)
    frame = pd.DataFrame(found.stages, columns=STAGE_COLUMNS)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    frame["held_by"] = frame["held_by"].astype("Int64")
    frame["exit_code"] = frame["exit_code"].astype("Int64")
    return frame, found.total, found.counts


# A person's actions on stages, each kept in the stages' audit trail with who and why; the
# rules (a reason is needed, what state allows what) are the domain's: a refusal is a
# MonitorsError (a ValueError) with the sentence to show, and nothing is changed.

def override_gate(dataset: str, partition: dt.date, *, by: str, reason: str) -> dict:
    """Let the partition's waiting stages past its closed gate, for the alerts holding it
    now (monitors.pipeline.stages.override)."""
    with session_factory().begin() as session:
        return stages.override(session, dataset, partition, by=by, reason=reason)


def skip_stage(dataset: str, partition: dt.date, stage: str, *, by: str, reason: str) -> dict:
    """Pass over a waiting or failed stage: the next one may run (stages.skip)."""
    with session_factory().begin() as session:
        return stages.skip(session, dataset, partition, stage, by=by, reason=reason)


def rerun_stages(dataset: str, partition: dt.date, stage: str, *, by: str) -> None:
    """Queue a stage again, and every stage after it, in order (the worker runs them once
    the partition's gate is safe); Refused while one of them runs (stages.rerun)."""
    if not by:
        raise ValueError("a rerun needs a name: say who you are first")
    with session_factory().begin() as session:
        stages.rerun(session, _config(), dataset, partition, by=by, from_stage=stage)


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
# Views of alerts are cached under the store's triage marker (store.queries.read_triage_marker),
# which any change from any process moves: a page asking with the current marker sees the
# current truth. The alerts page keeps the marker it loaded with until the person acts or asks
# for new alerts, so the rows someone is selecting from do not shift under them (PLATFORM.md).

RESOLUTIONS = lifecycle.RESOLUTIONS
STATUSES = tuple(s.value for s in AlertStatus)
SEVERITIES = tuple(s.value for s in Severity)
UNRESOLVED_STATUSES = tuple(s.value for s in UNRESOLVED)


def triage_marker() -> str:
    """Uncached and cheap: where the alerts and mutes stand now."""
    with session_factory()() as session:
        return queries.read_triage_marker(session)


def expected_partition(today: dt.date | None = None) -> dt.date:
    """The partition a daily pipeline delivers today: yesterday's, in UTC."""
    return delivery.expected_partition(today or utcnow().date())


def unresolved_labels_frame() -> pd.DataFrame:
    """Open and acknowledged alerts per dataset, severity, status and muted."""
    return _unresolved_frame(triage_marker())


@st.cache_data(ttl=15)  # a mute that ends by the clock changes counts without a write
def _unresolved_frame(marker: str) -> pd.DataFrame:
    del marker  # keys the cache
    with session_factory()() as session:
        rows = lifecycle.count_unresolved(session, utcnow())
    return pd.DataFrame(rows, columns=["dataset", "severity", "status", "muted", "caused",
                                       "alerts", "last_seen_at"]).astype({"muted": bool, "caused": bool})


def status_counts() -> dict[str, int]:
    """Open and acknowledged incidents nobody muted (an alert caused by another is counted
    with its incident's root, in `caused`, not again), and the muted alerts."""
    counts = unresolved_labels_frame()
    loud = counts[~counts["muted"]]
    leading = loud[~loud["caused"]]
    return {**{s: int(leading.loc[leading["status"] == s, "alerts"].sum()) for s in UNRESOLVED_STATUSES},
            "caused": int(loud.loc[loud["caused"], "alerts"].sum()),
            "muted": int(counts.loc[counts["muted"], "alerts"].sum())}


def health_frame() -> pd.DataFrame:
    """One row per dataset, worst first: its health and alert counts (monitors.lifecycle.alerts)."""
    return _health_frame(triage_marker())


@st.cache_data(ttl=15)
def _health_frame(marker: str) -> pd.DataFrame:
    del marker  # keys the cache
    with session_factory()() as session:
        rows = lifecycle.dataset_health(session, utcnow())
    return pd.DataFrame(rows, columns=["dataset", "upstream", "health", *UNRESOLVED_STATUSES, "caused", "muted",
                                       *SEVERITIES, "last_seen_at"]
                        ).rename(columns={"last_seen_at": "last alert seen"})


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
    pending (its deadline has not passed yet); paused datasets say so (monitors.intake.delivery)."""
    with session_factory()() as session:
        found = delivery.list_partition_deliveries(session, partition, utcnow())
    frame = pd.DataFrame([{"dataset": d.dataset, "state": str(d.state), "rows": d.rows,
                           "arrived at": d.arrived_at, "hours after day end": d.hours_after_day_end,
                           "reason": d.reason} for d in found],
                         columns=["dataset", "state", "rows", "arrived at", "hours after day end",
                                  "reason"])
    return frame.astype({"rows": "Int64"})


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
        return {"datasets": sorted(d.name for d in queries.list_datasets(session)),
                "monitors": sorted(filter(None, queries.list_label_values(session, "monitor")))}


@st.cache_data(ttl=600)
def alerts_table(statuses: tuple[str, ...] = (), severities: tuple[str, ...] = (),
                 datasets: tuple[str, ...] = (), monitors: tuple[str, ...] = (),
                 seen_from: dt.date | None = None, seen_to: dt.date | None = None,
                 show_muted: bool = False, only_muted: bool = False, page: int = 0,
                 marker: str = "") -> tuple[pd.DataFrame, int]:
    """One page of alerts (last seen first) and how many match in all: the CLI's query
    (monitors.lifecycle.alerts.alert_page), filtered, mute-matched and paged in SQL. `seen_from` and
    `seen_to` bound the alert's partition, both days included. `marker` keys the cache."""
    del marker
    with session_factory()() as session:
        found = lifecycle.alert_page(
            session, status=statuses, severity=severities, dataset=datasets, monitor=monitors,
            since=seen_from, until=seen_to,
            muted=(True if only_muted else None) if show_muted else False,
            limit=PAGE_SIZE, offset=page * PAGE_SIZE)
    frame = pd.DataFrame(found.alerts, columns=[*queries.ALERT_PAGE_COLUMNS, "muted"])
    frame = frame.astype({"muted": bool})
    for column in ("first_seen_at", "last_seen_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    return frame, found.total


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
        except MonitorsError as exc:
            refused.append(str(exc))
        else:
            done.append(int(alert_id))
    alert_filter_choices.clear()
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


def reopen_alert(alert_id: int, *, by: str, note: str | None = None,
                 seen: str | None = None) -> tuple[list[int], list[str]]:
    return _each([alert_id], lambda s, i: lifecycle.reopen(s, i, by=by, note=note or None,
                                                           seen=seen))


ACCEPTABLE = baselines.ACCEPTABLE


def accept_alert(alert_id: int, *, by: str, note: str,
                 seen: str | None = None) -> tuple[list[int], list[str]]:
    """Accept the alert's change as the new normal (monitors.judge.baselines.accept)."""
    return _each([alert_id], lambda s, i: baselines.accept(s, i, by=by, note=note or None,
                                                           seen=seen))


def unaccept_alert(alert_id: int, *, by: str) -> tuple[list[int], list[str]]:
    """Withdraw the acceptance: the alert opens again (monitors.judge.baselines.unaccept)."""
    return _each([alert_id], lambda s, i: baselines.unaccept(s, i, by=by))


def comment_alert(alert_id: int, *, by: str, note: str) -> None:
    with session_factory().begin() as session:
        lifecycle.comment(session, alert_id, by=by, note=note)


def mute_preview(matchers: dict[str, str | None]) -> pd.DataFrame:
    """The unresolved alerts a mute with these matchers would cover (ValueError for
    matchers a mute would refuse)."""
    with session_factory()() as session:
        covered = mutes.preview(session, matchers, utcnow())
    return pd.DataFrame(covered, columns=["id", "dataset", "column", "monitor", "detector",
                                          "severity", "status", "partition", "message"])


def add_mute(matchers: dict[str, str | None], *, reason: str | None, by: str,
             ends_at: dt.datetime | None) -> int:
    """Store a mute, and re-evaluate the gates it releases (monitors.lifecycle.muting);
    ValueError (and nothing stored) without a reason, an end time, ..."""
    with session_factory().begin() as session:
        mute = muting.add(session, matchers=matchers, reason=reason, by=by, ends_at=ends_at,
                          now=utcnow())
        return mute.id


def alert_document(alert_id: int, marker: str | None = None) -> dict | None:
    """The alert with its events and firings, and its dataset's sensitive columns, as the
    store holds it now (or at `marker`); None when there is no such alert."""
    return _alert_document(alert_id, marker or triage_marker())


@st.cache_data(ttl=600)
def _alert_document(alert_id: int, marker: str) -> dict | None:
    del marker  # keys the cache
    with session_factory()() as session:
        try:
            document = lifecycle.get_alert(session, alert_id)
        except NotFound:
            return None
        contract = Contract.model_validate(find_dataset(session, document["dataset"]).contract)
    document["sensitive"] = [c.name for c in contract.columns if c.sensitive]
    return document


def alert_history(alert_id: int) -> dict | None:
    """What the alert's chart shows (monitors.judge.explain.alert_history), None for no alert."""
    document = alert_document(alert_id)
    if document is None:
        return None
    # keyed by the alert's timeline too: an acceptance (or its withdrawal) adds an event,
    # and the chart then draws its marker at once
    return _alert_history(alert_id, len(document["events"]))


@st.cache_data(ttl=120)
def _alert_history(alert_id: int, events: int) -> dict | None:
    del events  # keys the cache
    document = alert_document(alert_id)
    with session_factory()() as session:
        return explain.alert_history(session, _config(), document)


@st.cache_data(ttl=300)
def alert_decomposition(alert_id: int) -> pd.DataFrame | None:
    """The alert's series split into trend, season and remainder."""
    history = alert_history(alert_id)
    return None if history is None or "series" not in history else explain.decomposition(history["series"])


def masked_examples(document: dict) -> pd.DataFrame:
    """A static check's example rows, sensitive columns masked (monitors.judge.explain)."""
    return explain.masked_examples(document)


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
