"""Evaluating monitors: from a spec and the stored history up to a partition, to a verdict.

Only history up to the partition under test is read, so a backfill replays what a live run
would have seen on that day (causal), and a backtest is the same call without recording:
`evaluate_partition` gives every monitor's verdict for one partition, for both.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy.orm import Session

from detectors import checks, registry
from detectors.profiles import PROFILE_METRICS, identifier_reason
from detectors.result import Detection, Finding
from monitors.contract import Contract
from monitors.freshness import arrival_delay_hours, partition_day_end, partition_due_at
from monitors.plan import MonitorSpec
from monitors.profile import QUANTILE_KEYS
from monitors.readers import ContractViolation, detect_format, read_file
from store import queries
from store.models import Batch, Dataset


def metrics_read_by(specs) -> set[str]:
    """The stored metrics a set of monitors reads, so a run loads only those."""
    needed: set[str] = set()
    for spec in specs:
        if spec.detector == "drift" and spec.metric == "quantiles":
            needed.update(QUANTILE_KEYS)
        elif spec.metric == "freq":
            needed.update(("freq", "freq_other"))
        elif spec.metric == "profile":
            needed.update(PROFILE_METRICS)
        elif spec.metric:
            needed.add(spec.metric)
        if spec.not_for_identifiers:
            needed.update(("count", "distinct"))
    return needed
# breakouts are confirmed only once the new regime has lasted a while: look back this far
BREAKOUT_LOOKBACK_DAYS = 21


@dataclass(frozen=True, slots=True)
class Verdict:
    """A monitor's answer for one partition: a finding, a pass, or no judgement."""

    spec: MonitorSpec
    partition: dt.date          # the partition the alert is about
    finding: Finding | None
    skipped: str | None = None
    evidence: dict | None = None
    failed: bool = False        # the monitor itself raised


# a partition is judged on the 26 weeks before it (its seasons, its regimes, its categories):
# a daily run then costs the same for a dataset of any age, and a backfill judges each
# partition on what its daily run saw
HISTORY_DAYS = 182


def history_since(first: dt.date) -> dt.date:
    """The oldest partition any of `first` and the partitions after it is judged on."""
    return first - dt.timedelta(days=HISTORY_DAYS - 1)


class MetricHistory:
    """A dataset's stored metrics (long format), sliced per monitor and partition: up to
    the partition, and at most `window_days` back when given."""

    def __init__(self, frame: pd.DataFrame, window_days: int | None = None):
        self.window = None if window_days is None else pd.Timedelta(days=window_days)
        frame = frame.assign(column=frame["column"].fillna(""))
        self._groups = {key: group for key, group in frame.groupby(["column", "metric"], sort=False)}
        # a backfill asks for the same series and category table once per partition: each is
        # built once over the whole history and cut at the partition (a pivot per call was
        # 40% of a backfill's time)
        self._series: dict[tuple[str, str, str], pd.Series] = {}
        self._categories: dict[str, tuple[pd.DataFrame, pd.Series]] = {}
        self._scalars: pd.DataFrame | None = None
        self._last_cut: tuple[dt.date, pd.DataFrame] | None = None
        self._cut_columns: dict[str, pd.DataFrame] = {}  # column_profile's, of the last cut

    def _all_rows(self, column: str | None, metric: str) -> pd.DataFrame:
        rows = self._groups.get((column or "", metric))
        return pd.DataFrame(columns=["partition", "key", "value"]) if rows is None else rows

    def series(self, column: str | None, metric: str, until: dt.date, key: str = "") -> pd.Series:
        """A daily series up to `until`; days without a batch are NaN, so weekly seasons
        stay aligned across a missing day."""
        whole = self._series.get((column or "", metric, key))
        if whole is None:
            rows = self._all_rows(column, metric)
            rows = rows[rows["key"] == key]
            whole = pd.Series(rows["value"].to_numpy(dtype=float),
                              index=pd.DatetimeIndex(rows["partition"]), name=metric)
            self._series[column or "", metric, key] = whole
        series = whole[self._judged(whole.index, until)]
        if series.empty:
            return series
        return series.asfreq("D")

    def categories(self, column: str, until: dt.date) -> pd.DataFrame:
        """Category counts: one row per partition, one column per category, plus `other`."""
        if column not in self._categories:
            freq = self._all_rows(column, "freq")
            self._categories[column] = (
                # a groupby and unstack: pivot_table cost 25 ms a call, once per column a run
                freq.groupby(["partition", "key"])["value"].sum().unstack("key"),
                self._all_rows(column, "freq_other").set_index("partition")["value"])
        whole, other = self._categories[column]
        # a category first seen after `until` is all-NaN before it: not a column yet
        frame = whole[self._judged(whole.index, until)].dropna(axis=1, how="all")
        if frame.empty:
            return pd.DataFrame()
        frame["other"] = other.reindex(frame.index).fillna(0)
        return frame

    def _judged(self, index: pd.DatetimeIndex, until: dt.date) -> np.ndarray:
        end = pd.Timestamp(until)
        inside = index <= end
        return inside if self.window is None else inside & (index > end - self.window)

    def column_profile(self, column: str, until: dt.date) -> pd.DataFrame:
        """A column's scalar metrics: one row per partition (NaN where no batch)."""
        scalars = self._cut(self._all_scalars(), until)
        columns = self._cut_columns
        if column not in columns:
            names = scalars.columns.get_level_values(0)
            columns[column] = (scalars.loc[:, names == column].droplevel(0, axis=1)
                               if (names == column).any() else pd.DataFrame(index=scalars.index))
        return columns[column]

    def table_profile(self, columns: list[str], until: dt.date) -> pd.DataFrame:
        """The batch's row count and the scalar metrics of `columns`, side by side."""
        scalars = self._cut(self._all_scalars(), until)
        kept = scalars.loc[:, scalars.columns.get_level_values(0).isin(["", *columns])]
        kept.columns = [f"{c}.{m}" if c else m for c, m in kept.columns]
        return kept

    def _all_scalars(self) -> pd.DataFrame:
        """Every column's profile metrics and the row count, one wide table for the whole
        history, built once (one pivot, not one per column and partition)."""
        if self._scalars is None:
            wanted = {*PROFILE_METRICS, *QUANTILE_KEYS, "row_count"}
            rows = [g for (_, metric), g in self._groups.items() if metric in wanted]
            rows = pd.concat(rows) if rows else pd.DataFrame(
                columns=["partition", "column", "metric", "key", "value"])
            rows = rows[rows["key"] == ""]
            wide = rows.set_index(["partition", "column", "metric"])["value"]
            wide = wide[~wide.index.duplicated(keep="last")].unstack(["column", "metric"])
            wide.index = pd.DatetimeIndex(wide.index)
            self._scalars = wide.sort_index().sort_index(axis=1)
        return self._scalars

    def _cut(self, whole: pd.DataFrame, until: dt.date) -> pd.DataFrame:
        # every monitor of a partition asks for the same cut: made once per partition
        if self._last_cut is None or self._last_cut[0] != until:
            frame = whole[self._judged(whole.index, until)]
            self._last_cut = (until, frame if frame.empty else frame.asfreq("D"))
            self._cut_columns = {}
        return self._last_cut[1]

    def quantiles(self, column: str, until: dt.date) -> pd.DataFrame:
        """Numeric profiles: one row per partition, columns min, p01..p99, max, count."""
        return self.column_profile(column, until).reindex(columns=QUANTILE_KEYS).dropna(how="all")


def evaluate_metric(spec: MonitorSpec, history: MetricHistory, partition: dt.date) -> Verdict:
    """Run a metric monitor for one partition."""
    at = pd.Timestamp(partition)
    try:
        detection = _detect(spec, history, partition, since=at)
    except Exception as exc:  # one monitor's failure must not stop the run; it becomes a finding
        return monitor_failed(spec, partition, exc)
    if detection.skipped:
        return Verdict(spec, partition, None, skipped=detection.skipped)
    if spec.detector == "breakouts":
        # the verdict is about the partition under test: "a new regime began recently";
        # the newest change found in the look-back window, its start in the evidence
        if not detection.findings:
            return Verdict(spec, partition, None)
        newest = max(detection.findings, key=lambda f: pd.Timestamp(f.at))
        return Verdict(spec, partition, _naming_column(spec, newest),
                       evidence={"breakout_at": pd.Timestamp(newest.at).date().isoformat()})
    finding = next((f for f in detection.findings if pd.Timestamp(f.at) == at), None)
    return Verdict(spec, partition, _naming_column(spec, finding))


def _naming_column(spec: MonitorSpec, finding: Finding | None) -> Finding | None:
    """A column's alert says which column it is about ("[new_category] province: 'WEB'
    ..."), whatever the detector wrote: a person acts on a column, not on a monitor name."""
    if finding is None or not spec.column or finding.detail.split(":", 1)[0].endswith(spec.column):
        return finding
    tag, _, rest = finding.detail.partition("] ")
    detail = f"{tag}] {spec.column}: {rest}" if rest else f"{spec.column}: {finding.detail}"
    return dataclasses.replace(finding, detail=detail)


def detect_history(spec: MonitorSpec, history: MetricHistory, until: dt.date, *,
                   since: pd.Timestamp | None = None) -> Detection:
    """The spec's detector over its history up to `until`, every point from `since` under
    test (all of them when None; breakouts look back from it as a run does), with the
    Detection's band over them: what a chart of the monitor draws, through the same
    dispatch and options as a run."""
    return _detect(spec, history, until, since=since)


def _detect(spec: MonitorSpec, history: MetricHistory, partition: dt.date, *,
            since: pd.Timestamp | None) -> Detection:
    entry = registry.detector(spec.detector)
    options = dict(spec.options)
    if spec.not_for_identifiers:
        reason = identifier_reason(history.column_profile(spec.column, partition),
                                   spec.column, until=partition)
        if reason:
            return Detection(spec.detector, skipped=reason)
    if spec.detector == "breakouts" and since is not None:
        # breakouts are judged over a look-back: a new regime is told apart only once it lasted
        since = since - pd.Timedelta(days=BREAKOUT_LOOKBACK_DAYS)
    detect = entry.function()
    if entry.input == registry.SERIES:
        series = history.series(spec.column, spec.metric, partition, key=options.pop("key", ""))
        return detect(series, since=since, **options)
    if entry.input == registry.CATEGORY_COUNTS:
        counts = history.categories(spec.column, partition).drop(columns="other", errors="ignore")
        return detect(counts, since=since, **options)
    if entry.input == registry.PROFILES:
        # a categorical column's profile is its category counts, a numeric one's its quantiles
        profiles = (history.categories(spec.column, partition) if spec.metric == "freq"
                    else history.quantiles(spec.column, partition))
        return detect(profiles, since=since, name=spec.column, **options)
    if entry.input == registry.COLUMN_PROFILE:
        return detect(history.column_profile(spec.column, partition), since=since,
                      name=spec.column, **options)
    if entry.input == registry.TABLE_PROFILE:
        return detect(history.table_profile(options.pop("columns", []), partition), since=since,
                      **options)
    raise ValueError(f"monitor {spec.name!r}: {spec.detector!r} judges a batch's rows, "
                     f"not a metric's history")


def evaluate_check(spec: MonitorSpec, frame: pd.DataFrame, partition: dt.date,
                   sensitive: list[str]) -> Verdict:
    """Run a static check over a batch's rows; sensitive columns are masked in examples."""
    try:
        entry = registry.detector(spec.detector)
        subject = {"column": (spec.column,),
                   "columns": ((spec.check.columns if spec.check else None) or spec.column,),
                   None: ()}[entry.subject]
        detection = entry.function()(frame, *subject, at=pd.Timestamp(partition),
                                     mask=sensitive, **dict(spec.options))
    except Exception as exc:  # a broken check is reported, the run goes on
        return monitor_failed(spec, partition, exc)
    if detection.skipped:
        return Verdict(spec, partition, None, skipped=detection.skipped)
    finding = detection.findings[0] if detection.findings else None
    evidence = {"examples": list(finding.examples)} if finding and finding.examples else None
    return Verdict(spec, partition, finding, evidence=evidence)


def evaluate_sql_check(spec: MonitorSpec, dataset: Dataset, contract: Contract,
                       partition: dt.date) -> Verdict:
    """A static check of a SQL dataset, computed inside its database (monitors.pushdown);
    a check the dialect can't compute is the monitor's failure, never a silent skip."""
    from sqlalchemy import create_engine

    from monitors.credentials import expand
    from monitors.pushdown import check_sql_partition

    columns = (spec.check.columns if spec.check and spec.check.columns else
               [spec.column] if spec.column else [])
    sensitive = [c.name for c in contract.columns if c.sensitive]
    engine = create_engine(expand(dataset.source))  # ${NAME}: the secret, read only now
    try:
        detection = check_sql_partition(
            engine, dataset.table_name or dataset.name, dataset.partition_key, partition,
            contract, spec.detector, columns, spec.options, at=pd.Timestamp(partition),
            mask=sensitive)
    except Exception as exc:  # a check that can't run is reported, the run goes on
        return monitor_failed(spec, partition, exc)
    finally:
        engine.dispose()
    if detection.skipped:
        return Verdict(spec, partition, None, skipped=detection.skipped)
    finding = detection.findings[0] if detection.findings else None
    evidence = {"examples": list(finding.examples)} if finding and finding.examples else None
    return Verdict(spec, partition, finding, evidence=evidence)


def monitor_failed(spec: MonitorSpec, partition: dt.date, exc: Exception) -> Verdict:
    """A monitor that raised: a finding of its own, so someone fixes the monitor."""
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    place = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
    finding = Finding(at=pd.Timestamp(partition), value=None, expected=None, lower=None,
                      upper=None, score=0.0,
                      detail=f"[monitor_failed] {spec.name}: {type(exc).__name__}: {exc}{place}")
    return Verdict(spec, partition, finding, evidence={"error": f"{type(exc).__name__}: {exc}"},
                   failed=True)


# ---- one partition: every monitor of a dataset, as a run and a backtest judge it ----------


def evaluate_partition(session: Session, dataset: Dataset, contract: Contract,
                       specs: list[MonitorSpec], history: MetricHistory, partition: dt.date,
                       now: dt.datetime | None) -> list[Verdict]:
    """Every monitor's verdict for one partition. `contract` is the dataset's, parsed once
    by the caller for all the partitions it evaluates."""
    verdicts: list[Verdict] = []
    batch = queries.get_current_batch(session, dataset.id, partition)
    latest = queries.get_latest_batch(session, dataset.id, partition)
    frame = None
    for spec in specs:
        if spec.kind == "metric":
            if batch is not None:  # no batch, no new point: freshness speaks for it
                verdicts.append(evaluate_metric(spec, history, partition))
        elif spec.kind == "check":
            if batch is not None and dataset.format == "sql":
                verdicts.append(evaluate_sql_check(spec, dataset, contract, partition))
            elif batch is not None:
                if frame is None:
                    frame = load_batch_frame(batch.source, dataset, contract)
                if frame is not None:
                    sensitive = [c.name for c in contract.columns if c.sensitive]
                    verdicts.append(evaluate_check(spec, frame, partition, sensitive))
        else:
            verdicts.append(_batch_state_verdict(spec, dataset, partition, batch, latest, now))
    return verdicts


def _batch_state_verdict(spec: MonitorSpec, dataset: Dataset, partition: dt.date,
                         batch: Batch | None, latest: Batch | None,
                         now: dt.datetime | None) -> Verdict:
    """The contract, freshness and missing monitors: verdicts on what was delivered."""
    day_end = partition_day_end(partition)
    deadline = partition_due_at(partition, dataset.deadline_hours)
    at = pd.Timestamp(partition)
    if spec.kind == "contract":
        if batch is not None or latest is None:
            return Verdict(spec, partition, None, skipped=None if batch else "nothing delivered")
        finding = state_finding(at, f"[contract] {latest.reason}", score=1.0)
        return Verdict(spec, partition, finding, evidence={"reason": latest.reason,
                                                           "batch_id": latest.id,
                                                           "source": latest.source})
    if spec.kind == "freshness":
        if batch is None:
            return Verdict(spec, partition, None, skipped="no batch in force")
        detection = checks.freshness(batch.arrived_at, expected_at=day_end, deadline_at=deadline,
                                     at=at)
        finding = detection.findings[0] if detection.findings else None
        return Verdict(spec, partition, finding,
                       evidence={"arrived_at": batch.arrived_at.isoformat(),
                                 "delay_hours": round(arrival_delay_hours(partition, batch.arrived_at), 2)})
    # missing: nothing delivered at all (a quarantined delivery is the contract's alert)
    if latest is not None:
        return Verdict(spec, partition, None)
    clock = now or dt.datetime.now(dt.UTC)
    if clock <= deadline:
        return Verdict(spec, partition, None, skipped="not due yet")
    # no clock in the text: a rerun of the same facts must give the same finding
    finding = state_finding(at, f"[missing] no batch for {partition}: it was due by "
                                f"{deadline:%Y-%m-%d %H:%M} UTC", score=1.0)
    return Verdict(spec, partition, finding)


def state_finding(at: pd.Timestamp, detail: str, score: float) -> Finding:
    return Finding(at=at, value=None, expected=None, lower=None, upper=None, score=score, detail=detail)


def load_batch_frame(source: str, dataset: Dataset, contract: Contract) -> pd.DataFrame | None:
    """A batch's rows for static checks; None when the file is gone (checks then skip)."""
    path = Path(source)
    if dataset.format == "sql" or not path.is_file():
        return None
    try:
        chunks = list(read_file(path, detect_format(path) or dataset.format, contract))
    except ContractViolation:
        return None
    tables = [pa.Table.from_batches([c]) if isinstance(c, pa.RecordBatch) else c for c in chunks]
    return pa.concat_tables(tables).to_pandas() if tables else None
