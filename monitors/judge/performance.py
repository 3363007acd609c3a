"""Realised model performance: when a partition's labels land, its predictions joined with
the outcomes are scored once, and the figures are stored as ordinary metrics of the model
output (partition, metric, key = model version), so monitors, backtests and charts read them
like any other series and the raw predictions are never read again.

Stored per partition and per model version (key "" = all versions together):

- auc, average_precision, log_loss, brier, ece; precision, recall, f1 at the decision
  threshold; positive_rate (share of outcomes that are positive), coverage (share of the
  predictions with an outcome), labelled (how many), unmatched_labels (overall only);
- the reliability curve behind the ECE (10 equal-width score bins: rows, mean score,
  positive rate) and score histograms per outcome (50 bins): key "<version>#<bin>".

The metrics are scikit-learn's (the reference implementations; the tests compare them on
the same rows); ECE, which scikit-learn does not provide, bins as its calibration_curve does.

Before the labels land, performance is estimated from the score histogram of the
predictions (stored when they land) and a calibration fitted on a labelled reference
window: confidence-based performance estimation (CBPE), see `estimate`.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from monitors.intake.labels import Joined, LabelsConfig, link_of, models_of
from store import queries

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from store.models import Dataset

RELIABILITY_BINS = 10
HISTOGRAM_BINS = 50
# the figures one row of `performance` shows, in order
SCALARS = ("auc", "average_precision", "brier", "log_loss", "ece", "precision", "recall", "f1",
           "positive_rate", "coverage", "labelled")
BINNED = ("reliability_rows", "reliability_score", "reliability_rate", "hist_positive",
          "hist_negative")
# the score histogram of every prediction, stored when predictions land (for the estimate)
SCORE_HISTOGRAM = "hist_scores"
ESTIMATES = ("estimated_auc", "estimated_auc_lower", "estimated_auc_upper")


def bin_key(version: str, index: int) -> str:
    return f"{version}#{index:02d}"


def bins_of(score: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bins over [0, 1], bounded as scikit-learn's calibration_curve bounds them;
    scores outside [0, 1] fall in the end bins."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], score)


def realised(score: np.ndarray, outcome: np.ndarray, threshold: float) -> dict[str, float]:
    """Every figure of labelled predictions (`outcome` 0/1). A figure the rows cannot define
    (AUC with one class, Brier of scores outside [0, 1]) is left out, not stored as NaN."""
    import sklearn
    from sklearn import metrics

    # the inputs are built here, finite and well formed: scikit-learn's argument checks
    # were most of the time it took on a day's rows
    with sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        return _realised(metrics, score, outcome, threshold)


def _realised(metrics, score: np.ndarray, outcome: np.ndarray, threshold: float) -> dict[str, float]:
    y = outcome.astype(np.int64)
    out: dict[str, float] = {"labelled": float(len(y))}
    if len(y) == 0:
        return out
    out["positive_rate"] = float(y.mean())
    if 0 < y.sum() < len(y):
        out["auc"] = float(metrics.roc_auc_score(y, score))
        out["average_precision"] = float(metrics.average_precision_score(y, score))
    if score.min() >= 0 and score.max() <= 1:
        out["brier"] = float(metrics.brier_score_loss(y, score))
        out["log_loss"] = float(metrics.log_loss(y, score, labels=[0, 1]))
        rows, mean_score, rate = reliability(score, y)
        seen = rows > 0
        out["ece"] = float(np.sum(rows[seen] / len(y) * np.abs(mean_score[seen] - rate[seen])))
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        y, score >= threshold, average="binary", zero_division=np.nan)
    for name, value in (("precision", precision), ("recall", recall), ("f1", f1)):
        if not np.isnan(value):
            out[name] = float(value)
    return out


def reliability(score: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per score bin: rows, mean score and positive rate (NaN where a bin is empty)."""
    ids = bins_of(score, RELIABILITY_BINS)
    rows = np.bincount(ids, minlength=RELIABILITY_BINS).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(ids, weights=score, minlength=RELIABILITY_BINS) / rows
        rate = np.bincount(ids, weights=y, minlength=RELIABILITY_BINS) / rows
    return rows, mean_score, rate


def histogram(score: np.ndarray) -> np.ndarray:
    return np.bincount(bins_of(score, HISTOGRAM_BINS), minlength=HISTOGRAM_BINS).astype(float)


def performance_rows(joined: Joined) -> list[tuple[str | None, str, str, float]]:
    """The metric rows of one joined partition: overall (key "") and per model version."""
    code_of = {name: code for code, name in enumerate(joined.versions)}
    rows: list[tuple[str | None, str, str, float]] = []
    for version in ["", *sorted(v for v in joined.versions if v)]:
        scope = (np.ones(len(joined.score), bool) if version == ""
                 else joined.version == code_of[version])
        # a prediction without a score has nothing to rank: it counts against coverage only
        labelled = scope & joined.labelled & ~np.isnan(joined.score)
        score, outcome = joined.score[labelled], joined.outcome[labelled]
        figures = realised(score, outcome, joined.threshold)
        figures["coverage"] = float(labelled.sum() / scope.sum()) if scope.sum() else 0.0
        rows.extend((None, name, version, value) for name, value in figures.items())
        if len(score):
            counts, mean_score, rate = reliability(score, outcome)
            for index in range(RELIABILITY_BINS):
                key = bin_key(version, index)
                rows.append((None, "reliability_rows", key, counts[index]))
                if counts[index]:
                    rows.append((None, "reliability_score", key, float(mean_score[index])))
                    rows.append((None, "reliability_rate", key, float(rate[index])))
            for name, part in (("hist_positive", outcome == 1), ("hist_negative", outcome == 0)):
                for index, count in enumerate(histogram(score[part])):
                    rows.append((None, name, bin_key(version, index), count))
    rows.append((None, "unmatched_labels", "", float(joined.unmatched_labels)))
    return rows


def store_performance(session: Session, labels_batch_id: int, resolved: Iterable[Joined]) -> int:
    """Store each model output's figures for the partition, on the labels batch that
    resolved them: a later delivery of these labels supersedes that batch, and its figures
    go with it."""
    from store.models import Batch

    batch = session.get(Batch, labels_batch_id)
    stored = 0
    for joined in resolved:
        stored += queries.add_metrics(session, batch, performance_rows(joined),
                                      dataset_id=joined.model_id)
    return stored


# ---- the estimate before the labels land (CBPE) --------------------------------------------


def binned_auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """The AUC of outcomes counted per score bin (ties within a bin count half)."""
    total_p, total_n = positive.sum(), negative.sum()
    if total_p <= 0 or total_n <= 0:
        return float("nan")
    below = np.cumsum(negative) - negative
    return float((positive * (below + 0.5 * negative)).sum() / (total_p * total_n))


def _split_keys(reference: pd.DataFrame) -> pd.DataFrame:
    """Stored rows with their key split: `version`, and `bin` (-1 for a scalar figure)."""
    parts = reference["key"].str.rpartition("#")
    binned = parts[1] == "#"
    return reference.assign(version=parts[0].where(binned, reference["key"]),
                            bin=pd.to_numeric(parts[2].where(binned, "-1")).astype(int))


def _counts(reference: pd.DataFrame, metric: str, partitions: list) -> np.ndarray:
    """partitions x score bins of one binned metric (`reference`: one version's rows)."""
    rows = reference[reference["metric"] == metric]
    days = np.asarray(partitions, dtype="datetime64[ns]")
    at = rows["partition"].to_numpy(dtype="datetime64[ns]")
    place = np.clip(np.searchsorted(days, at), 0, len(days) - 1)
    inside = days[place] == at
    counts = np.zeros((len(days), HISTOGRAM_BINS))
    np.add.at(counts, (place[inside], rows["bin"].to_numpy()[inside]),
              rows["value"].to_numpy()[inside])
    return counts


def estimate(references: dict[str, pd.DataFrame], counts: np.ndarray, version: str,
             days: int) -> dict[str, float] | None:
    """The expected AUC of predictions whose score histogram is `counts`, with a band.

    Calibration is fitted on the labelled reference window (`references`: per version, the
    stored metrics of its partitions with their keys split, see `_split_keys`; the last
    `days` labelled ones are used; a version without a labelled reference of its own, a new
    one, is calibrated on all versions together): per score bin, the share of positive outcomes, so each bin's predictions
    are expected to hold that share of positives; the expected AUC follows from the expected
    positives and negatives per bin. Binning loses the order within a bin: the mean gap
    between realised and binned AUC over the reference is added back. The band is three
    robust standard deviations (1.4826 MAD) of the realised AUC across the reference
    partitions, whose outliers (an incident's days) are left out of the fit. None without
    a labelled reference of the version (nor of all versions together)."""
    for scope in (version, ""):
        mine = references.get(scope)
        if mine is None:
            continue
        realised_auc = mine[mine["metric"] == "auc"].set_index("partition")["value"]
        realised_auc = realised_auc.sort_index().tail(days)
        if len(realised_auc) >= 3:
            break
    else:
        return None
    # partitions far from the window's typical AUC (an incident's days) are left out of the
    # calibration and the band: a reference is meant to show the model working as usual
    spread = 1.4826 * float((realised_auc - realised_auc.median()).abs().median())
    if spread > 0:
        realised_auc = realised_auc[(realised_auc - realised_auc.median()).abs() <= 3 * spread]
    partitions = list(realised_auc.index)
    positive = _counts(mine, "hist_positive", partitions)
    negative = _counts(mine, "hist_negative", partitions)
    seen = positive.sum(axis=0) + negative.sum(axis=0)
    midpoints = (np.arange(HISTOGRAM_BINS) + 0.5) / HISTOGRAM_BINS
    # a score bin the reference never saw keeps its score as its probability
    calibration = np.where(seen > 0, positive.sum(axis=0) / np.maximum(seen, 1), midpoints)
    gap = np.nanmean([realised_auc.iloc[i] - binned_auc(positive[i], negative[i])
                      for i in range(len(partitions))])
    expected = binned_auc(counts * calibration, counts * (1 - calibration)) + gap
    return {"estimated_auc": expected, "estimated_auc_lower": max(0.0, expected - 3 * spread),
            "estimated_auc_upper": min(1.0, expected + 3 * spread)}


def prediction_rows(session: Session, model: Dataset, partition: dt.date,
                    table) -> list[tuple[str | None, str, str, float]]:
    """What a model output with labels stores when its predictions land: their score
    histogram per version, and the estimated performance where a reference allows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    link = link_of(model)
    score = table[link.score].to_numpy(zero_copy_only=False).astype(np.float64)
    version = (pc.cast(table[link.version], pa.string()).fill_null("")
               .to_numpy(zero_copy_only=False).astype(object)
               if link.version in table.column_names else np.full(len(score), "", object))
    usable = ~np.isnan(score)
    score, version = score[usable], version[usable]
    last_labelled = partition - dt.timedelta(days=link.delay_days)
    reference = queries.read_metrics(
        session, model.id, until=last_labelled,
        since=last_labelled - dt.timedelta(days=2 * link.reference_days),
        metrics=["auc", "hist_positive", "hist_negative"])
    # split by version once: each version's fit then reads only its own rows
    references = (dict(tuple(_split_keys(reference).groupby("version", sort=False)))
                  if len(reference) else {})
    rows: list[tuple[str | None, str, str, float]] = []
    for name in ["", *sorted({v for v in version if v})]:
        counts = histogram(score if name == "" else score[version == name])
        rows.extend((None, SCORE_HISTOGRAM, bin_key(name, i), c) for i, c in enumerate(counts))
        # all versions together (what the estimated-drop monitor judges) and each version,
        # so a rollout's versions are compared before their labels land
        estimated = estimate(references, counts, name, link.reference_days) if references else None
        rows.extend((None, metric, name, value) for metric, value in (estimated or {}).items()
                    if not np.isnan(value))
    return rows


# ---- reading it back -----------------------------------------------------------------------


def read_reliability(session: Session, model: Dataset, partition: dt.date,
                     version: str = "") -> pd.DataFrame:
    """The reliability curve of one partition: per score bin, rows, mean score, positive
    rate (empty bins left out)."""
    frame = queries.read_metrics(session, model.id, since=partition, until=partition,
                                 metrics=["reliability_rows", "reliability_score",
                                          "reliability_rate"])
    frame = frame[frame["key"].str.startswith(f"{version}#")]
    if frame.empty:
        return pd.DataFrame(columns=["bin", "rows", "mean_score", "positive_rate"])
    frame = frame.assign(bin=frame["key"].str.rsplit("#", n=1).str[1].astype(int))
    wide = frame.pivot_table(index="bin", columns="metric", values="value", aggfunc="first")
    wide = wide.rename(columns={"reliability_rows": "rows", "reliability_score": "mean_score",
                                "reliability_rate": "positive_rate"}).reset_index()
    return wide[wide["rows"] > 0][["bin", "rows", "mean_score", "positive_rate"]]


def list_models(session: Session) -> list[tuple[Dataset, LabelsConfig]]:
    """The model outputs that have labels."""
    return [(d, link_of(d)) for d in queries.list_datasets(session) if link_of(d) is not None]


# ---- judging: the performance monitors, on the day the labels land --------------------------


def judge_labels(session: Session, config, labels: Dataset, partition: dt.date):
    """The verdicts of every performance monitor (a monitor of a figure this module stores)
    of the model outputs these labels resolve, for `partition`: judged by the labels' run,
    on the day the outcomes land, and recorded as the model output's alerts.
    Yields (model output, its owner, verdict)."""
    from monitors.contract import Contract
    from monitors.judge.evaluate import (
        HISTORY_DAYS,
        MetricHistory,
        evaluate_metric,
        history_since,
    )
    from monitors.judge.plan import ESTIMATED_DROP, plan_monitors

    if queries.get_current_batch(session, labels.id, partition) is None:
        return
    for model, _ in models_of(session, labels):
        declared = config.dataset(model.name)
        planned = plan_monitors(model.kind, Contract.model_validate(model.contract), declared)
        specs = [s for s in planned if s.kind == "metric" and s.metric in SCALARS]
        estimated = [s for s in planned if s.name == ESTIMATED_DROP]
        if not specs:
            continue
        history = MetricHistory(
            queries.read_metrics(session, model.id, until=partition,
                                 since=history_since(partition),
                                 metrics=sorted({s.metric for s in [*specs, *estimated]})),
            window_days=HISTORY_DAYS)
        owner = declared.owner if declared else None
        verdicts = [evaluate_metric(spec, history, partition) for spec in specs]
        yield from ((model, owner, v) for v in verdicts)
        for spec in estimated:
            yield model, owner, _confirmed(evaluate_metric(spec, history, partition), verdicts)
        for version in versions_labelled(history, partition):
            for spec in specs:
                yield model, owner, _of_version(
                    evaluate_metric(per_version(spec, version), history, partition), version)


def versions_labelled(history, partition: dt.date) -> list[str]:
    """The model versions with realised figures for `partition`, when there are two or more:
    each is then judged on its own series (one version alone is the overall series again)."""
    found = [k for k in history.keys_on(None, "auc", partition) if k and "#" not in k]
    return found if len(found) >= 2 else []


def per_version(spec, version: str):
    """A performance monitor of one model version: its own alert ("performance:auc_drop
    [v2]"), judged on that version's series (the stored key)."""
    from dataclasses import replace

    return replace(spec, name=f"{spec.name} [{version}]", options={**spec.options, "key": version})


def _of_version(verdict, version: str):
    """The verdict's finding says which model version it is about."""
    from dataclasses import replace

    if verdict.finding is None:
        return verdict
    tag, _, rest = verdict.finding.detail.partition("] ")
    detail = f"{tag}] model version {version}: {rest}" if rest else \
        f"model version {version}: {verdict.finding.detail}"
    return replace(verdict, finding=replace(verdict.finding, detail=detail))


def _confirmed(estimate, realised: list):
    """The estimated-drop monitor's verdict once the labels are in: when the estimate had
    fired, the realised AUC's finding if it fell too (the alert stays, confirmed), else a
    pass (the alert resolves). An estimate that had not fired stays as it was judged."""
    from dataclasses import replace

    from monitors.judge.evaluate import Verdict

    spec, partition = estimate.spec, estimate.partition
    if estimate.finding is None:
        return estimate
    fell = next((v for v in realised if v.finding is not None and v.spec.metric == "auc"), None)
    if fell is None:
        return Verdict(spec, partition, None)
    finding = replace(fell.finding, detail=f"[confirmed by the labels] {fell.finding.detail}")
    return Verdict(spec, partition, finding, evidence={"confirmed_by": fell.spec.name})


# ---- the report: `performance --dataset D` and the Model outputs page -----------------------

REPORT_COLUMNS = ("partition", "model_version", "auc", "average_precision", "brier", "log_loss",
                  "ece", "precision", "recall", "f1", "positive_rate", "coverage",
                  "estimated_auc", "estimated_auc_lower", "estimated_auc_upper", "labelled",
                  "labelled_rows")


def performance_frame(session: Session, model: Dataset, version: str | None = None) -> pd.DataFrame:
    """Per partition in force and model version (None: every version together): the
    realised figures once labelled, the estimate (with its band) stored when the predictions
    landed; `labelled` says whether the partition's labels are in."""
    from monitors.errors import Invalid, NotFound

    if link_of(model) is None:
        raise Invalid(f"dataset {model.name!r} has no labels: declare `labels:` in its config "
                      "(a model output naming its labels dataset, key and outcome)")
    frame = queries.read_metrics(session, model.id, metrics=[*SCALARS, *ESTIMATES])
    frame = frame[~frame["key"].str.contains("#", regex=False)]
    known = sorted(k for k in frame["key"].unique() if k)
    if version is not None:
        if version not in known:
            raise NotFound(f"{model.name}: no model version {version!r} (known: "
                           f"{', '.join(known) or 'none: it has no version column'})")
        frame = frame[frame["key"] == version]
    if frame.empty:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    wide = (frame.pivot_table(index=["partition", "key"], columns="metric", values="value",
                              aggfunc="first").reset_index()
            .rename(columns={"key": "model_version", "labelled": "labelled_rows"}))
    for name in REPORT_COLUMNS:
        if name not in wide:
            wide[name] = np.nan
    wide["labelled"] = wide["labelled_rows"].notna()
    wide["model_version"] = wide["model_version"].where(wide["model_version"] != "", None)
    wide = wide.sort_values(["partition", "model_version"], na_position="first", kind="stable")
    return wide[list(REPORT_COLUMNS)].reset_index(drop=True)


def performance_report(session: Session, model: Dataset, version: str | None = None) -> list[dict]:
    """`performance_frame` as JSON-ready rows (missing figures are None)."""
    frame = performance_frame(session, model, version)
    rows = []
    for record in frame.to_dict("records"):
        row = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in record.items()}
        row["partition"] = record["partition"].date().isoformat()
        row["labelled"] = bool(record["labelled"])
        if row["labelled_rows"] is not None:
            row["labelled_rows"] = int(row["labelled_rows"])
        rows.append(row)
    return rows
