"""Explaining an alert, for its charts: the series its monitor judged, the band it expected,
the values it fired on, the breakouts, and the series split into trend, season and
remainder; and a column's drift against its reference window, partition by partition.

The detector runs through evaluate's dispatch with the monitor's own options (the same code
as a run), over the whole history shown rather than one partition. No Streamlit here: the
dashboard caches these, the CLI may call them.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from detectors.seasonal import find_periods, seasonal_adjust
from monitors.config import MonitorsConfig
from monitors.contract import Contract
from monitors.datasets import find_dataset
from monitors.judge.baselines import markers_document
from monitors.judge.evaluate import QUANTILE_KEYS, MetricHistory, detect_history
from monitors.judge.plan import MonitorSpec, plan_monitors
from store import queries
from store.models import Dataset

# a chart shows everything stored: the history up to the end of time
EVERYTHING = dt.date.max
MASK = "••••"


def live_spec(config: MonitorsConfig, dataset: Dataset, monitor: str) -> MonitorSpec | None:
    """The spec of a monitor that watches the dataset now (None: disabled or unknown)."""
    specs = plan_monitors(dataset.kind, Contract.model_validate(dataset.contract),
                          config.dataset(dataset.name))
    return next((s for s in specs if s.name == monitor), None)


def column_history(session: Session, dataset_id: int, column: str | None,
                   metrics: list[str]) -> MetricHistory:
    """One column's stored metrics as a MetricHistory (a chart reads one column)."""
    frame = queries.read_column_metrics(session, dataset_id, column, metrics)
    return MetricHistory(frame.assign(column=column))


# what an alert's chart shows, by the kind of evidence its monitor judges
METRIC = "metric"          # the metric's history with its expected band (and breakouts)
DRIFT = "drift"            # the drift distance per partition against its limit
CATEGORIES = "categories"  # each category's share of the batch over time
ARRIVALS = "arrivals"      # the arrival delay per partition against the deadline
CONTRACT = "contract"      # no series: the contract break itself (the evidence)
ROWS = "rows"              # row counts for context (static checks)


def evidence_kind(spec: MonitorSpec | None, detector: str) -> str:
    """Which chart fits an alert: one kind per kind of evidence, so a drift alert is not
    drawn on row counts with its limit in another unit. `detector`: the alert's, for a
    monitor no longer planned."""
    name = spec.detector if spec is not None else detector
    kind = spec.kind if spec is not None else None
    if name == "drift":
        return DRIFT
    if name == "new_category":
        return CATEGORIES
    if name in ("freshness", "missing") or kind in ("freshness", "missing"):
        return ARRIVALS
    if name == "contract" or kind == "contract":
        return CONTRACT
    # a whole column's profile (or the batch's) has no one series: rows give the context
    if spec is not None and spec.kind == "metric" and spec.metric and spec.metric != "profile":
        return METRIC
    return ROWS


def drift_profile(spec: MonitorSpec | None) -> str:
    """The profile a drift monitor compares: class counts ("freq") or quantiles."""
    return "freq" if spec is not None and spec.metric == "freq" else "quantiles"


def alert_history(session: Session, config: MonitorsConfig, document: dict) -> dict[str, Any]:
    """What an alert's chart shows (`document`: monitors.lifecycle.alerts.get_alert's): the series its
    monitor judged (`series`, `label`), the expected `band` over it, the values it fired on
    (`anomalies`), what the detector flags elsewhere (`others`), `breakouts` (at, before,
    after), constant `thresholds` and a `note` saying what is drawn; its `kind`
    (evidence_kind); `markers`: the accepted new normals of its metric (at, by, note,
    alert_id), from which on it judges only the history after them. Drift, new-category, freshness and contract alerts return only their
    kind (and what their chart needs): their evidence is not a metric series. Static checks
    get the row count as context."""
    dataset = find_dataset(session, document["dataset"])
    spec = live_spec(config, dataset, document["monitor"])
    kind = evidence_kind(spec, document["detector"])
    # the accepted new normals of this metric: a vertical line each on its chart
    markers = markers_document(session, dataset, document["column"],
                               spec.metric if spec is not None else
                               (document.get("evidence") or {}).get("metric"))
    if kind in (DRIFT, CATEGORIES, ARRIVALS, CONTRACT):
        # drawn from their own histories (drift_history, class_shares, monitors.intake.delivery)
        return {"kind": kind, "profile": drift_profile(spec),
                "deadline_hours": dataset.deadline_hours, "markers": markers}
    column, band, note, key = document["column"], None, None, ""
    if kind == METRIC:
        metric, key = spec.metric, str(spec.options.get("key", ""))
        history = column_history(session, dataset.id, column, [metric])
    else:
        metric, column = "row_count", None
        history = column_history(session, dataset.id, None, [metric])
        note = "rows per batch, for context: this monitor has no metric series of its own"
    series = history.series(column, metric, EVERYTHING, key=key)
    detector = spec.detector if spec else document["detector"]
    options = dict(spec.options) if spec else {}
    breakouts, thresholds, flagged = [], {}, pd.DatetimeIndex([])
    if series.notna().sum() >= 3 and note is None and detector in (
            "anomalies", "proportional", "absolute", "breakouts"):
        try:
            found = detect_history(spec, history, EVERYTHING)
        except (ValueError, TypeError) as exc:  # an option the detector refuses: no band
            note = f"no band drawn: {exc}"
        else:
            if detector == "anomalies":
                band = found.band
                flagged = pd.DatetimeIndex([pd.Timestamp(f.at) for f in found.findings])
                note = "expected band: the anomaly detector refitted over the whole history shown"
            elif detector == "breakouts":
                breakouts = [{"at": f.at, "before": f.before, "after": f.after}
                             for f in found.findings]
                note = ("dashed lines: where a new level begins; flat lines: the level before "
                        "and after it")
            else:
                band = found.band if detector == "proportional" else None
                thresholds = ({k: options.get(k) for k in ("lower", "upper")}
                              if detector == "absolute" else {})
                note = "the band each batch was tested against" if band is not None else None
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
    return {"kind": kind, "series": series, "band": band, "anomalies": anomalies, "others": others,
            "breakouts": breakouts, "thresholds": thresholds,
            "label": label + (f" [{key}]" if key else ""), "note": note, "markers": markers}


def masked_examples(document: dict) -> pd.DataFrame:
    """A static check's example rows from the alert's evidence, with the contract's
    sensitive columns (`document["sensitive"]`) masked: the check masks them when it runs;
    this guards rows stored before a column was marked."""
    examples = pd.DataFrame((document.get("evidence") or {}).get("examples") or [])
    for column in document.get("sensitive", []):
        if column in examples.columns:
            examples[column] = MASK
    return examples


def decomposition(series: pd.Series) -> pd.DataFrame | None:
    """The series split into trend, season and remainder (None: too short to split)."""
    if series.notna().sum() < 3:
        return None
    return seasonal_adjust(series, find_periods(series) or None)


DRIFT_COLUMNS = ["partition", "value", "limit", "exceeded", "detail"]


def drift_history(session: Session, config: MonitorsConfig, dataset: str, column: str,
                  profile: str, days: int | None = None) -> tuple[pd.DataFrame, str, float]:
    """A column's drift against its reference window on the last `days` partitions (every
    one when None; earlier ones serve as reference), judged as the dataset's `drift:<column>`
    monitor would (its options when it watches the dataset): a DataFrame (partition, value,
    limit, exceeded, detail), the measure's name, the limit. `profile`: "freq" (class
    counts) or "quantiles" (numeric)."""
    found = find_dataset(session, dataset)
    watching = live_spec(config, found, f"drift:{column}")
    spec = MonitorSpec(name=f"drift:{column}", kind="metric", detector="drift",
                       severity="warning", column=column,
                       metric="freq" if profile == "freq" else "quantiles",
                       options=dict(watching.options) if watching else {}, point=False)
    history = column_history(session, found.id, column,
                             ["freq", "freq_other"] if profile == "freq" else QUANTILE_KEYS)
    profiles = (history.categories(column, EVERYTHING) if profile == "freq"
                else history.quantiles(column, EVERYTHING))
    measure = "JS distance" if profile == "freq" else "PSI"
    if profiles.empty:
        return pd.DataFrame(columns=DRIFT_COLUMNS), measure, float("nan")
    since = None if days is None else profiles.index.max() - pd.Timedelta(days=days - 1)
    detection = detect_history(spec, history, EVERYTHING, since=since)
    if detection.band is None:
        return pd.DataFrame(columns=DRIFT_COLUMNS), measure, float("nan")
    band = detection.band
    findings = {pd.Timestamp(f.at): f for f in detection.findings}
    frame = pd.DataFrame({
        "partition": pd.to_datetime(band.index), "value": band["value"].to_numpy(),
        "limit": band["upper"].to_numpy(),
        "exceeded": [pd.Timestamp(at) in findings for at in band.index],
        "detail": [findings[pd.Timestamp(at)].detail if pd.Timestamp(at) in findings else ""
                   for at in band.index]})
    return frame, measure, float(band["upper"].iloc[-1])


def chart_profiles(contract: Contract) -> list[dict]:
    """The columns of a model output worth charting, each with its profile: numeric ones
    (scores: "quantiles" bands) and categorical ones (predicted classes: "freq", the class
    mix); identifiers (sensitive columns) are left out."""
    rows = []
    for column in contract.columns:
        if column.sensitive:
            continue
        if column.type in ("string", "boolean") or column.categorical:
            rows.append({"column": column.name, "profile": "freq"})
        elif column.type in ("integer", "float"):
            rows.append({"column": column.name, "profile": "quantiles"})
    return rows


def quantile_history(session: Session, dataset_id: int, column: str) -> pd.DataFrame:
    """One row per partition with a batch: min, p01 ... p99, max, count of a numeric column.
    Days without a batch are left out: a filled band cannot break over a gap."""
    history = column_history(session, dataset_id, column, QUANTILE_KEYS)
    frame = history.quantiles(column, EVERYTHING).dropna(subset=["p50"])
    return frame.rename_axis("partition").reset_index()


def class_shares(session: Session, dataset_id: int, column: str) -> pd.DataFrame:
    """Per partition and class (partition, key, share): the class's share of the batch's
    rows; `other` holds the classes past the profile's top-k, left out when always empty."""
    counts = column_history(session, dataset_id, column, ["freq", "freq_other"]).categories(
        column, EVERYTHING)
    if counts.empty:
        return pd.DataFrame(columns=["partition", "key", "share"])
    shares = counts.div(counts.sum(axis=1), axis=0)
    if "other" in shares and not (shares["other"] > 0).any():
        shares = shares.drop(columns="other")
    return (shares.rename_axis("partition").reset_index()
            .melt(id_vars="partition", var_name="key", value_name="share").dropna())
