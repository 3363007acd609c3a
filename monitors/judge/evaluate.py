"""Evaluating monitors: from a spec and the stored history up to a partition, to a verdict.

Only history up to the partition under test is read, so a backfill replays what a live run
would have seen on that day (causal), and a backtest is the same call without recording:
`evaluate_partition` gives every monitor's verdict for one partition, for both.
"""
from __future__ import annotations

import datetime as dt
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy.orm import Session

from detectors import checks, registry
from detectors.profiles import PROFILE_METRICS, identifier_reason
from detectors.result import Detection, Finding
from monitors.contract import Contract
from monitors.intake.freshness import (
    arrival_delay_hours,
    first_arrival,
    partition_day_end,
    partition_due_at,
    unwatched,
)
from monitors.intake.profile import QUANTILE_KEYS
from monitors.intake.readers import ContractViolation, detect_format, read_file
from monitors.judge.baselines import Baselines
from monitors.judge.plan import MonitorSpec
from monitors.judge.references import References, pinned_drift
from monitors.judge.segments import explain_volume
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
# the points of history a verdict needs: a new dataset's first weeks (or a metric's first
# weeks after an accepted new normal) are its normal in the making, not a change of it
MIN_HISTORY = {"breakouts": 21}


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
    the partition, at most `window_days` back when given, and not before an accepted new
    normal of that metric (`baselines`: monitors.judge.baselines, the one rule for runs,
    backtests and charts)."""

    def __init__(self, frame: pd.DataFrame, window_days: int | None = None,
                 baselines: Baselines | None = None, references: References | None = None,
                 span: tuple[dt.date, dt.date] | None = None):
        self.window = None if window_days is None else pd.Timedelta(days=window_days)
        # the first and last partitions a run or a backtest judges: a drift monitor is then
        # run once over all of them (`_ranged_drift`), its detections kept here by monitor
        self.span = span
        self._ranged: dict[tuple, tuple[Detection, pd.Series, dict[pd.Timestamp, list[Finding]]]] = {}
        self.baselines = baselines or Baselines()
        # pinned drift references (monitors.judge.references), read with `raw`: outside the window
        self.references = references or References()
        frame = frame.assign(column=frame["column"].fillna(""))
        self._groups = {key: group for key, group in frame.groupby(["column", "metric"], sort=False)}
        # a backfill asks for the same series and category table once per partition: each is
        # built once over the whole history and cut at the partition (a pivot per call was
        # 40% of a backfill's time)
        self._series: dict[tuple[str, str, str], tuple[pd.Series, pd.Series]] = {}
        self._categories: dict[str, tuple[pd.DataFrame, pd.Series]] = {}
        self._quantiles: dict[str, pd.DataFrame] = {}
        self._daily: pd.DataFrame | None = None  # _all_scalars on a daily index
        self._column_scalars: dict[str, pd.DataFrame] = {}  # column_profile's, whole history
        self._scalars: pd.DataFrame | None = None
        self._last_cut: tuple[dt.date, pd.DataFrame] | None = None

    def columns_with(self, metric: str) -> list[str]:
        """The columns that have `metric` stored (table-level metrics have column "")."""
        return [column for column, name in self._groups if name == metric and column]

    def keys_on(self, column: str | None, metric: str, partition: dt.date) -> list[str]:
        """The keys `metric` has stored for `partition` (a category, a model version, ...)."""
        rows = self._all_rows(column, metric)
        return sorted(rows.loc[rows["partition"] == pd.Timestamp(partition), "key"].unique())

    def _all_rows(self, column: str | None, metric: str) -> pd.DataFrame:
        rows = self._groups.get((column or "", metric))
        return pd.DataFrame(columns=["partition", "key", "value"]) if rows is None else rows

    def series(self, column: str | None, metric: str, until: dt.date, key: str = "", *,
               raw: bool = False) -> pd.Series:
        """A daily series up to `until`; days without a batch are NaN, so weekly seasons
        stay aligned across a missing day. `raw`: all of it up to `until`, neither the
        window nor an accepted baseline cut (a pinned reference's own history)."""
        stored, daily = self._whole(column, metric, key)
        first, last = self._bounds(stored, until, None if raw else (column, metric))
        if first > last:
            return stored.iloc[:0]
        # positions on the daily index: a slice, not a mask and a reindex per partition (a
        # backfill asks for each series once per partition and monitor)
        origin = stored.index[0]
        return daily.iloc[(stored.index[first] - origin).days:(stored.index[last] - origin).days + 1]

    def _whole(self, column: str | None, metric: str, key: str) -> tuple[pd.Series, pd.Series]:
        """A metric's stored points over the whole history, sorted, and the same on a daily
        index (NaN where no batch): built once, cut per partition."""
        found = self._series.get((column or "", metric, key))
        if found is None:
            rows = self._all_rows(column, metric)
            rows = rows[rows["key"] == key]
            stored = pd.Series(rows["value"].to_numpy(dtype=float),
                               index=pd.DatetimeIndex(rows["partition"]), name=metric).sort_index()
            found = (stored, stored.asfreq("D") if len(stored) else stored)
            self._series[column or "", metric, key] = found
        return found

    def _bounds(self, stored: pd.Series, until: dt.date,
                judged: tuple[str | None, str] | None) -> tuple[int, int]:
        """The positions of the first and last stored points a judgement of `until` reads:
        up to `until`, and (unless `judged` is None: raw) inside the window and not before
        an accepted new normal of (column, metric). The rule of `_judged`, by bisection."""
        index = stored.index
        last = int(index.searchsorted(pd.Timestamp(until), side="right")) - 1
        first = 0
        if judged is not None:
            if self.window is not None:
                first = int(index.searchsorted(pd.Timestamp(until) - self.window, side="right"))
            start = self.baselines.start(*judged, until) if self.baselines else None
            if start is not None:
                first = max(first, int(index.searchsorted(pd.Timestamp(start), side="left")))
        return first, last

    def categories(self, column: str, until: dt.date, *, raw: bool = False) -> pd.DataFrame:
        """Category counts: one row per partition, one column per category, plus `other`."""
        if column not in self._categories:
            freq = self._all_rows(column, "freq")
            self._categories[column] = (
                # a groupby and unstack: pivot_table cost 25 ms a call, once per column a run
                freq.groupby(["partition", "key"])["value"].sum().unstack("key"),
                self._all_rows(column, "freq_other").set_index("partition")["value"])
        whole, other = self._categories[column]
        # the rows by position (the rule of `_judged`, by bisection, as `series` cuts), and
        # "other" aligned once per run: a mask, a dropna and a reindex per call were most of
        # the cost of a drift monitor's input
        if len(other) != len(whole) or not other.index.equals(whole.index):
            other = other.reindex(whole.index).fillna(0)
            self._categories[column] = (whole, other)
        first, last = self._bounds(whole, until, None if raw else (column, "freq"))
        values = whole.to_numpy()[first:last + 1]
        # a category first seen after `until` is all-NaN before it: not a column yet
        seen = np.flatnonzero(~np.isnan(values).all(axis=0))
        frame = whole.iloc[first:last + 1, seen]
        if frame.empty:
            return pd.DataFrame()
        frame["other"] = other.iloc[first:last + 1]
        return frame

    def _in_window(self, index: pd.DatetimeIndex, until: dt.date) -> np.ndarray:
        end = pd.Timestamp(until)
        inside = index <= end
        if self.window is not None:
            inside &= index > end - self.window
        return inside

    def _judged(self, index: pd.DatetimeIndex, until: dt.date, column: str | None,
                metric: str) -> np.ndarray:
        inside = self._in_window(index, until)
        start = self.baselines.start(column, metric, until) if self.baselines else None
        if start is not None:  # an accepted new normal: what came before is not its history
            inside &= index >= pd.Timestamp(start)
        return inside

    def column_profile(self, column: str, until: dt.date) -> pd.DataFrame:
        """A column's scalar metrics: one row per partition (NaN where no batch)."""
        whole = self._column_scalars.get(column)
        if whole is None:  # the column's part of the daily table, taken once per run
            daily = self._daily_scalars()
            names = daily.columns.get_level_values(0)
            whole = (daily.loc[:, names == column].droplevel(0, axis=1)
                     if (names == column).any() else pd.DataFrame(index=daily.index))
            self._column_scalars[column] = whole
        # the rows of `_cut`: the window's first to last batch of the table, by position
        index = self._all_scalars().index
        first, last = self._bounds(self._all_scalars(), until, None)
        if self.window is not None:
            first = int(index.searchsorted(pd.Timestamp(until) - self.window, side="right"))
        if first > last:
            return self._after_baseline(whole.iloc[:0], column, "profile", until)
        origin = index[0]
        cut = whole.iloc[(index[first] - origin).days:(index[last] - origin).days + 1]
        return self._after_baseline(cut, column, "profile", until)

    def _daily_scalars(self) -> pd.DataFrame:
        if self._daily is None:
            whole = self._all_scalars()
            self._daily = whole if whole.empty else whole.asfreq("D")
        return self._daily

    def table_profile(self, columns: list[str], until: dt.date) -> pd.DataFrame:
        """The batch's row count and the scalar metrics of `columns`, side by side."""
        scalars = self._cut(self._all_scalars(), until)
        kept = scalars.loc[:, scalars.columns.get_level_values(0).isin(["", *columns])]
        kept.columns = [f"{c}.{m}" if c else m for c, m in kept.columns]
        return self._after_baseline(kept, None, "profile", until)

    def _after_baseline(self, frame: pd.DataFrame, column: str | None, metric: str,
                        until: dt.date) -> pd.DataFrame:
        start = self.baselines.start(column, metric, until) if self.baselines else None
        return frame if start is None else frame[frame.index >= pd.Timestamp(start)]

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
            frame = whole[self._in_window(whole.index, until)]
            self._last_cut = (until, frame if frame.empty else frame.asfreq("D"))
        return self._last_cut[1]

    def quantiles(self, column: str, until: dt.date, *, raw: bool = False) -> pd.DataFrame:
        """Numeric profiles: one row per partition, columns min, p01..p99, max, count."""
        starts = {None if raw or not self.baselines else self.baselines.start(column, m, until)
                  for m in QUANTILE_KEYS}
        if len(starts) > 1:  # the keys cut at different new normals: series by series
            parts = {m: self.series(column, m, until, raw=raw) for m in QUANTILE_KEYS}
            return pd.DataFrame(parts).dropna(how="all")
        # one table over the whole history, cut per partition by the rule of `series`
        whole = self._quantiles.get(column)
        if whole is None:
            whole = pd.DataFrame({m: self._whole(column, m, "")[0] for m in QUANTILE_KEYS})
            self._quantiles[column] = whole = whole.sort_index().dropna(how="all")
        first, last = self._bounds(whole, until, None if raw else (column, QUANTILE_KEYS[0]))
        return whole.iloc[first:last + 1]


def evaluate_metric(spec: MonitorSpec, history: MetricHistory, partition: dt.date) -> Verdict:
    """Run a metric monitor for one partition."""
    at = pd.Timestamp(partition)
    needed = MIN_HISTORY.get(spec.detector)
    if needed and spec.metric:
        points = int(history.series(spec.column, spec.metric, partition,
                                    key=str(spec.options.get("key", ""))).count())
        if points < needed:
            return Verdict(spec, partition, None,
                           skipped=f"history {points} < {needed} points: too new to judge")
    try:
        detection = _detect(spec, history, partition, since=at, ranged=True)
        pinned = _pinned(spec, history, partition)
    except Exception as exc:  # one monitor's failure must not stop the run; it becomes a finding
        return monitor_failed(spec, partition, exc)
    if pinned is not None and not any(pd.Timestamp(f.at) == at for f in detection.findings):
        # drifted from the pinned reference, whatever the recent batches say: a persistent
        # drift stays one open alert until it is fixed or accepted
        return Verdict(spec, partition, pinned, evidence={"reference": "pinned"})
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
    finding = _naming_column(spec, finding)
    if finding is not None and spec.metric == "row_count":
        # said where the rows went, in the alert and its message
        segment = explain_volume(history, partition)
        if segment is not None:
            finding = replace(finding, detail=f"{finding.detail}; {segment.sentence()}")
    return Verdict(spec, partition, finding)


def _naming_column(spec: MonitorSpec, finding: Finding | None) -> Finding | None:
    """A column's alert says which column it is about ("[new_category] province: 'WEB'
    ..."), whatever the detector wrote: a person acts on a column, not on a monitor name."""
    if finding is None or not spec.column or finding.detail.split(":", 1)[0].endswith(spec.column):
        return finding
    tag, _, rest = finding.detail.partition("] ")
    detail = f"{tag}] {spec.column}: {rest}" if rest else f"{spec.column}: {finding.detail}"
    return replace(finding, detail=detail)


def _pinned(spec: MonitorSpec, history: MetricHistory, partition: dt.date) -> Finding | None:
    """A drift monitor's verdict against its pinned reference window, if one is set."""
    window = history.references.window(spec.column, partition) if spec.detector == "drift" else None
    if window is None or not spec.column:
        return None
    profiles = (history.categories(spec.column, partition, raw=True) if spec.metric == "freq"
                else history.quantiles(spec.column, partition, raw=True))
    if profiles.empty:
        return None
    return pinned_drift(spec, profiles, partition, window,
                        history.baselines.start(spec.column, spec.metric, partition))


def detect_history(spec: MonitorSpec, history: MetricHistory, until: dt.date, *,
                   since: pd.Timestamp | None = None) -> Detection:
    """The spec's detector over its history up to `until`, every point from `since` under
    test (all of them when None; breakouts look back from it as a run does), with the
    Detection's band over them: what a chart of the monitor draws, through the same
    dispatch and options as a run."""
    return _detect(spec, history, until, since=since)


def _detect(spec: MonitorSpec, history: MetricHistory, partition: dt.date, *,
            since: pd.Timestamp | None, ranged: bool = False) -> Detection:
    entry = registry.detector(spec.detector)
    options = dict(spec.options)
    options.pop("key", None)  # chose the series (detector_input), not a detector option
    if spec.not_for_identifiers:
        reason = identifier_reason(history.column_profile(spec.column, partition),
                                   spec.column, until=partition)
        if reason:
            return Detection(spec.detector, skipped=reason)
    if ranged and spec.detector == "drift" and entry.input == registry.PROFILES:
        found = _ranged_drift(spec, history, partition, options)
        if found is not None:
            return found
    if spec.detector == "breakouts" and since is not None:
        # breakouts are judged over a look-back: a new regime is told apart only once it lasted
        since = since - pd.Timedelta(days=BREAKOUT_LOOKBACK_DAYS)
    detect = entry.function()
    data = detector_input(spec, history, partition)
    if entry.input in (registry.PROFILES, registry.COLUMN_PROFILE):
        return detect(data, since=since, name=spec.column, **options)
    if entry.input == registry.TABLE_PROFILE:
        options.pop("columns", None)  # chose the table profile (detector_input), not an option
    return detect(data, since=since, **options)


def _ranged_drift(spec: MonitorSpec, history: MetricHistory, partition: dt.date,
                  options: dict) -> Detection | None:
    """A drift monitor's detection of `partition` out of one call over every partition of
    the span a run judges: a call per partition re-read, re-validated and re-framed the same
    26 weeks to compare one profile with the few before it (a third of a backfill's time).
    Each partition is compared with the very profiles its own call would read (its
    `window` predecessors), so the findings are the same; None (judge it alone) when its
    own cut holds fewer of them (a history window or an accepted new normal begins inside
    its reference), when it was not judged (the skip says why, per partition), or when the
    quantiles of its column are cut at different new normals."""
    span = history.span
    if span is None or not span[0] <= partition <= span[1] or not spec.column:
        return None
    window = options.get("window") or (1 if options.get("reference") == "previous" else 7)
    key = (spec.name, spec.column, spec.metric, repr(sorted(options.items())))
    if key not in history._ranged:
        # every stored profile up to the span's end, neither window nor new normal cut
        profiles = (history.categories(spec.column, span[1], raw=True) if spec.metric == "freq"
                    else history.quantiles(spec.column, span[1], raw=True))
        detection = registry.detector("drift").function()(
            profiles, since=pd.Timestamp(span[0]), name=spec.column, **options)
        at: dict[pd.Timestamp, list[Finding]] = {}
        for finding in detection.findings:
            at.setdefault(pd.Timestamp(finding.at), []).append(finding)
        history._ranged[key] = (detection, pd.Series(0.0, index=profiles.index), at)
    detection, stored, findings = history._ranged[key]
    stamp = pd.Timestamp(partition)
    if detection.band is None or stamp not in detection.band.index:
        return None
    judged = (spec.column, "freq") if spec.metric == "freq" else (spec.column, QUANTILE_KEYS[0])
    if spec.metric != "freq" and history.baselines and len(
            {history.baselines.start(spec.column, m, partition) for m in QUANTILE_KEYS}) > 1:
        return None
    # where the partition's own cut starts (the rule of `series`), by position in the profiles
    first, position = history._bounds(stored, partition, judged)
    if first > max(0, position - window):
        return None
    return Detection(detection.detector, tuple(findings.get(stamp, ())))


def detector_input(spec: MonitorSpec, history: MetricHistory,
                   partition: dt.date) -> pd.Series | pd.DataFrame:
    """The history a metric monitor's detector reads to judge `partition`: a series, the
    category counts or the quantile profiles. What an alert records it was judged on."""
    entry = registry.detector(spec.detector)
    if entry.input == registry.SERIES:
        return history.series(spec.column, spec.metric, partition, key=spec.options.get("key", ""))
    if entry.input == registry.CATEGORY_COUNTS:
        return history.categories(spec.column, partition).drop(columns="other", errors="ignore")
    if entry.input == registry.PROFILES:
        # a categorical column's profile is its category counts, a numeric one's its quantiles
        return (history.categories(spec.column, partition) if spec.metric == "freq"
                else history.quantiles(spec.column, partition))
    if entry.input == registry.COLUMN_PROFILE:
        return history.column_profile(spec.column, partition)
    if entry.input == registry.TABLE_PROFILE:
        return history.table_profile(spec.options.get("columns", []), partition)
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
    """A static check of a SQL dataset, computed inside its database (monitors.intake.pushdown);
    a check the dialect can't compute is the monitor's failure, never a silent skip."""
    from monitors.intake.pushdown import check_sql_partition, source_engine

    columns = (spec.check.columns if spec.check and spec.check.columns else
               [spec.column] if spec.column else [])
    sensitive = [c.name for c in contract.columns if c.sensitive]
    engine = source_engine(dataset.source)  # ${NAME}: the secret, read only now
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
            arrived_at = None
            if spec.kind == "freshness" and batch is not None:
                arrived_at = first_arrival(session, dataset.id, partition) or batch.arrived_at
            verdicts.append(_batch_state_verdict(session, spec, dataset, partition, batch,
                                                 latest, now, arrived_at))
    return verdicts


def _batch_state_verdict(session: Session, spec: MonitorSpec, dataset: Dataset,
                         partition: dt.date, batch: Batch | None, latest: Batch | None,
                         now: dt.datetime | None,
                         arrived_at: dt.datetime | None = None) -> Verdict:
    """The contract, freshness and missing monitors: verdicts on what was delivered.
    `arrived_at`: the partition's first delivery (monitors.intake.freshness.first_arrival), which
    freshness judges; the batch in force's arrival when not given."""
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
        arrived_at = arrived_at or batch.arrived_at
        detection = checks.freshness(arrived_at, expected_at=day_end, deadline_at=deadline,
                                     at=at)
        finding = detection.findings[0] if detection.findings else None
        if finding is not None and (why := unwatched(dataset, partition)):
            return Verdict(spec, partition, None, skipped=why)
        return Verdict(spec, partition, finding,
                       evidence={"arrived_at": arrived_at.isoformat(),
                                 "delay_hours": round(arrival_delay_hours(partition, arrived_at), 2)})
    # missing: nothing delivered at all (a quarantined delivery is the contract's alert)
    if latest is not None:
        return Verdict(spec, partition, None)
    clock = now or dt.datetime.now(dt.UTC)
    if clock <= deadline:
        return Verdict(spec, partition, None, skipped="not due yet")
    # a backfill reaching back before the first delivery: nothing was due then (ten years
    # back raised 3,624 critical alerts); a dataset that never delivered is still missing
    first = queries.first_delivered_partition(session, dataset.id)
    if first is not None and partition < first:
        return Verdict(spec, partition, None, skipped=f"before the first delivery ({first})")
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
