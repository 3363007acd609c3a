"""A column's whole profile judged at once: what a single bad batch does to a column.

The input is one row per partition and one column per scalar metric of a batch profile
(`count`, `distinct`, `mean`, `std`, `min`, `max`, the quantiles `p01`..`p99`, `zeros`,
`negatives`, the string lengths): what the pipeline stores for every column, so nothing
here reads raw data.

- `detect_profile_shift`: a point whose mean, median, tail quantiles, extremes, spread,
  zero or negative share, distinct count or string lengths leave the range of the trailing
  window. Each metric has the test that fits it (a robust z-score against the window's
  median and MAD for levels; an absolute change for shares; a ratio for distinct counts)
  AND a practical-significance floor, so a metric that barely moves (a mean over a million
  rows) does not fire on a change nobody would act on. One finding per point names every
  metric that moved, in words ("income: mean -48,210 vs expected 47,900 ± 2,100; negative
  share 100% (was 0%)").
- `detect_duplicates`: a column unique in every batch of its history that has repeats now.
- `detect_repeats`: a batch whose whole profile equals an earlier batch's (yesterday's file
  delivered again under today's date).
- `identifier_reason`: why a column is an identifier (near-unique, named like one), whose
  level and distribution mean nothing.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from detectors._rules import check_integer, check_number, under_test
from detectors.numbers import fmt_number
from detectors.result import Detection, Finding

# metric -> (family, words); the order is the order a message lists them in
_JUDGED: dict[str, tuple[str, str]] = {
    "mean": ("level", "mean"),
    "negative_share": ("share", "negative share"),
    "zero_share": ("share", "zero share"),
    "p50": ("level", "median"),
    "std": ("spread", "spread (std)"),
    "distinct": ("distinct", "distinct values"),
    "distinct_share": ("share", "distinct share"),
    "p01": ("tail", "1st percentile"),
    "p99": ("tail", "99th percentile"),
    "min": ("extreme", "min"),
    "max": ("extreme", "max"),
    "length_mean": ("level", "mean length"),
    "length_min": ("extreme", "min length"),
    "length_max": ("extreme", "max length"),
}
# the scalar metrics this module reads from a column's stored profile
PROFILE_METRICS = ("count", "distinct", "mean", "std", "min", "max", "p01", "p25", "p50",
                   "p75", "p99", "zeros", "negatives", "length_min", "length_mean", "length_max")
# MAD -> standard deviation of a normal
_MAD_SCALE = 1.4826
# a metric positive in at least this share of its window is judged on its range
_POSITIVE_SHARE = 0.9
# a message lists this many changed metrics, then names the rest
_LISTED = 3
# a column whose distinct values are at least this share of its values in every batch is
# near-unique; with a name like an identifier's, it is one
NEAR_UNIQUE = 0.95
_ID_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$|[a-z]Id$|^id_", re.IGNORECASE)


def detect_profile_shift(profiles: pd.DataFrame, *, since: Any = None, name: str = "",
                         window: int = 28, min_history: int = 14, threshold: float = 6.0,
                         min_change: float = 0.1, min_extreme_change: float = 1.0,
                         min_share_change: float = 0.05) -> Detection:
    """Points under test whose profile left the trailing `window` partitions' range.

    A metric fires when it is more than `threshold` robust standard deviations (1.4826 MAD)
    from the window's median AND past its practical floor: `min_change` of its scale (the
    larger of the median's magnitude and the column's interquartile range) for levels
    (mean, median, tails, spread, lengths), `min_extreme_change` of it for min and max
    (one row moves them), `min_share_change` (absolute) for the zero and negative shares,
    and a halving or doubling for a distinct count. A metric with fewer than `min_history`
    points in the window is not judged."""
    detector = "profile_shift"
    check_integer(window, "window", ge=2)
    check_integer(min_history, "min_history", ge=2)
    if min_history > window:
        raise ValueError(f"min_history: {min_history} exceeds window ({window})")
    for option, value in (("threshold", threshold), ("min_change", min_change),
                          ("min_extreme_change", min_extreme_change),
                          ("min_share_change", min_share_change)):
        check_number(value, option, ge=0)
    if profiles.empty:
        return Detection(detector, skipped="no profile to judge")
    names, values = _judged_metrics(profiles)
    if not names:
        return Detection(detector, skipped="no profile to judge")
    tested = np.flatnonzero(under_test(profiles.index, since))
    if not len(tested):
        return Detection(detector, skipped="no points under test")
    iqr = ((profiles["p75"] - profiles["p25"]).to_numpy(dtype=float)
           if {"p25", "p75"} <= set(profiles.columns) else np.full(len(profiles), np.nan))
    findings, judged = [], False
    for i in tested:
        past = values[max(0, i - window):i]
        past_iqr = iqr[max(0, i - window):i]
        past_iqr = past_iqr[~np.isnan(past_iqr)]
        # the column's own unit: its usual interquartile range
        unit = float(np.median(past_iqr)) if len(past_iqr) else 0.0
        changes = []
        for j, metric in enumerate(names):
            value = values[i, j]
            history = past[:, j]
            history = history[~np.isnan(history)]
            if np.isnan(value) or len(history) < min_history:
                continue
            judged = True
            change = _judge(metric, value, history, unit, threshold=threshold,
                            min_change=min_change, min_extreme_change=min_extreme_change,
                            min_share_change=min_share_change)
            if change is not None:
                changes.append(change)
        if changes:
            findings.append(_finding(profiles.index[i], name, changes))
    if not judged:
        return Detection(detector, skipped=f"history under {min_history} batches in the "
                                           f"{window} before the points under test")
    return Detection(detector, findings=tuple(findings))


def _judged_metrics(profiles: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The metrics judged and their values (one row per point, one column per metric),
    derived where a stored count reads better as a share. numpy, not pandas: a run judges
    every column of every dataset, and frame arithmetic cost more than the judging."""
    stored = {m: profiles[m].to_numpy(dtype=float) for m in profiles.columns}
    out = {m: stored[m] for m in _JUDGED if m in stored}
    count = stored.get("count")
    if count is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            present = np.where(count > 0, count, np.nan)
            for kept, share in (("zeros", "zero_share"), ("negatives", "negative_share")):
                if kept in stored:
                    out[share] = stored[kept] / present
            if "distinct" in stored:
                # distinct values grow with the rows when most values are distinct (a
                # weekend's smaller batch has fewer): such a column is judged on its share
                ratio = stored["distinct"] / present
                if np.any(~np.isnan(ratio)) and np.nanmedian(ratio) >= 0.5:
                    out.pop("distinct")
                    out["distinct_share"] = ratio
    names = [m for m in _JUDGED if m in out]
    values = np.column_stack([out[m] for m in names]) if names else np.empty((len(profiles), 0))
    return names, values


def _judge(metric: str, value: float, history: np.ndarray, iqr: float, *, threshold: float,
           min_change: float, min_extreme_change: float,
           min_share_change: float) -> dict | None:
    family, words = _JUDGED[metric]
    center = float(np.median(history))
    unit = max(abs(center), iqr if np.isfinite(iqr) else 0.0)
    # an extreme sits on one row, a tail quantile on a few (and on one step of a
    # small-integer column), a skewed column's spread on its largest values: each swings
    # widely on clean data and needs a larger move to mean something
    relative = {"extreme": min_extreme_change, "tail": min_extreme_change / 2,
                "spread": min_extreme_change / 2}.get(family)
    # a positive metric: positive in nearly every batch of the window. A batch or two that
    # were not (a sign-flipped export, alerted on the day) must not switch the metric to
    # the symmetric test for the next `window` batches, where a clean batch's largest
    # income, twice the usual now and then, fires. The range is the positive batches'
    if relative is not None and (history > 0).mean() >= _POSITIVE_SHARE:
        change = _judge_range(metric, value, history, ratio=1 + relative)
        # and a move that matters on the column's scale: 2 -> 3 is a ratio, not a change
        if change is None or abs(value - center) <= relative * unit:
            return None
        return change
    spread = _MAD_SCALE * float(np.median(np.abs(history - center)))
    noise = threshold * spread
    if family == "share":
        floor = min_share_change
    elif family == "distinct":
        # a halving or a doubling (a column gone constant, a code list exploding)
        floor = center * 0.5 if value < center else center
    else:
        floor = (relative or min_change) * unit
    tolerance = max(noise, floor)
    deviation = abs(value - center)
    if deviation <= tolerance or deviation == 0:
        return None
    score = deviation / tolerance if tolerance > 0 else float("inf")
    return {"metric": metric, "family": family, "words": words, "value": float(value),
            "expected": center, "lower": center - tolerance, "upper": center + tolerance,
            "score": score}


def _judge_range(metric: str, value: float, history: np.ndarray, *, ratio: float) -> dict | None:
    """A positive metric that swings on clean data, judged against the range the window
    itself saw, widened by `ratio` both ways: the max of an income doubles on one row now
    and then, but not twelvefold, and it is never negative."""
    family, words = _JUDGED[metric]
    # the range of its positive batches: a non-positive one (already judged) widens nothing
    history = history[history > 0]
    lower, upper = float(history.min()) / ratio, float(history.max()) * ratio
    if lower <= value <= upper:
        return None
    score = float("inf") if value <= 0 else max(value / upper, lower / value)
    return {"metric": metric, "family": family, "words": words, "value": float(value),
            "expected": float(np.median(history)), "lower": lower, "upper": upper,
            "score": score}


def _finding(at: Any, name: str, changes: list[dict]) -> Finding:
    first = changes[0]  # the changes come in the order a person reads them
    listed = [_describe(c) for c in changes[:_LISTED]]
    rest = [c["words"] for c in changes[_LISTED:]]
    text = "; ".join(listed) + (f"; also {', '.join(rest)}" if rest else "")
    subject = f"{name}: " if name else ""
    return Finding(at=at, value=first["value"], expected=first["expected"],
                   lower=first["lower"], upper=first["upper"],
                   score=max(c["score"] for c in changes),
                   detail=f"[profile] {subject}{text}",
                   before=first["expected"], after=first["value"])


def _describe(change: Mapping[str, Any]) -> str:
    value, expected = change["value"], change["expected"]
    if change["family"] == "share":
        return f"{change['words']} {_percent(value)} (was {_percent(expected)})"
    if change["family"] == "distinct":
        return f"{change['words']} {fmt_number(value)} (was {fmt_number(expected)})"
    half = (change["upper"] - change["lower"]) / 2
    if abs(change["lower"] + half - expected) <= 1e-9 * max(abs(expected), 1.0):
        return (f"{change['words']} {fmt_number(value)} vs expected {fmt_number(expected)} "
                f"± {fmt_number(half)}")
    return (f"{change['words']} {fmt_number(value)} vs expected {fmt_number(expected)} "
            f"(usual range {fmt_number(change['lower'])} to {fmt_number(change['upper'])})")


def _percent(share: float) -> str:
    percent = 100 * share
    if percent == 0 or percent >= 10 or percent == round(percent):
        return f"{percent:.0f}%"
    return f"{percent:.2g}%"


# --- uniqueness ----------------------------------------------------------------------------


def detect_duplicates(profiles: pd.DataFrame, *, since: Any = None, name: str = "",
                      min_history: int = 7, exact_limit: int = 100_000,
                      tolerance: float = 0.01) -> Detection:
    """Points under test with repeated values in a column that was unique in every batch
    before them (at least `min_history` batches). Distinct counts are exact up to
    `exact_limit` values (the profiler's bound); past it they are estimates, and repeats
    under `tolerance` of the values are the estimate's error, not duplicates."""
    detector = "duplicates"
    check_integer(min_history, "min_history", ge=1)
    check_integer(exact_limit, "exact_limit", ge=0)
    check_number(tolerance, "tolerance", ge=0, lt=1)
    if not {"count", "distinct"} <= set(profiles.columns):
        return Detection(detector, skipped="no count and distinct count in the profile")
    count = profiles["count"].to_numpy(dtype=float)
    distinct = profiles["distinct"].to_numpy(dtype=float)
    kept = ~np.isnan(count) & ~np.isnan(distinct) & (count > 0)
    index, count, distinct = profiles.index[kept], count[kept], distinct[kept]
    tested = np.flatnonzero(under_test(index, since))
    if not len(tested):
        return Detection(detector, skipped="no batch under test")
    repeats = count - distinct
    allowed = np.where(distinct <= exact_limit, 0.0, tolerance * count)
    has_repeats = repeats > allowed
    findings, reasons = [], set()
    for i in tested:
        if i < min_history:
            reasons.add(f"history {i} < {min_history} batches")
            continue
        if has_repeats[:i].any():
            reasons.add(f"not unique in every batch ({int(has_repeats[:i].sum())} of {i} "
                        f"had repeats)")
            continue
        if has_repeats[i]:
            share = repeats[i] / count[i]
            subject = f"{name}: " if name else ""
            findings.append(Finding(
                at=index[i], value=float(repeats[i]), expected=0.0, lower=0.0,
                upper=float(allowed[i]), score=float(share),
                detail=f"[duplicates] {subject}{fmt_number(repeats[i])} repeated values in "
                       f"{fmt_number(count[i])} ({_percent(share)}); it was unique in "
                       f"each of the {i} batches before",
                count=int(repeats[i]), fraction=float(share)))
    if not findings and len(reasons) == 1 and len(tested) == 1:
        return Detection(detector, skipped=reasons.pop())
    return Detection(detector, findings=tuple(findings))


def identifier_reason(profiles: pd.DataFrame, name: str, *, until: Any = None) -> str | None:
    """Why `name` is an identifier column, from the batches before `until` (all when None):
    named like one (`id`, `*_id`, `uuid`, `key`...) and near-unique in every batch. None
    when it is not one. A sequence's level and an id's distribution mean nothing."""
    if not _ID_NAME.search(name) or not {"count", "distinct"} <= set(profiles.columns):
        return None
    frame = profiles[["count", "distinct"]].astype(float).dropna()
    if until is not None:
        frame = frame[frame.index < pd.Timestamp(until)]
    frame = frame[frame["count"] > 0]
    if frame.empty:
        return None
    if ((frame["distinct"] / frame["count"]) >= NEAR_UNIQUE).all():
        return (f"{name} is an identifier (near-unique in every batch): its level and "
                f"distribution mean nothing; it is watched for duplicates")
    return None


# --- stale data ----------------------------------------------------------------------------


def detect_repeats(profiles: pd.DataFrame, *, since: Any = None, min_history: int = 7,
                   min_metrics: int = 3, rtol: float = 1e-9) -> Detection:
    """Points under test whose whole profile (every metric present) equals an earlier
    point's: the same content delivered again under another partition. Judged once there
    are `min_history` earlier batches; a dataset whose content repeated lately (a reference
    table, unchanged for days) is static, not stale, and stays quiet."""
    detector = "repeats"
    check_integer(min_history, "min_history", ge=1)
    check_integer(min_metrics, "min_metrics", ge=1)
    check_number(rtol, "rtol", ge=0)
    frame = profiles.astype(float).dropna(how="all")
    if frame.empty:
        return Detection(detector, skipped="no profile to compare")
    tested = np.flatnonzero(under_test(frame.index, since))
    if not len(tested):
        return Detection(detector, skipped="no batch under test")
    values = frame.to_numpy()
    present = ~np.isnan(values)

    def equal(i: int, js: np.ndarray) -> np.ndarray:
        """Which of the rows `js` hold the same metrics as row i, with the same values."""
        same_shape = (present[js] == present[i]).all(axis=1)
        close = np.isclose(values[js], values[i], rtol=rtol, atol=0) | ~present[js]
        return same_shape & close.all(axis=1) & (present[i].sum() >= min_metrics)

    findings, judged = [], False
    for i in tested:
        if i < min_history:
            continue
        judged = True
        matches = np.flatnonzero(equal(i, np.arange(i)))
        if not len(matches):
            continue
        # a dataset that repeated itself lately is static (a reference table), not stale
        recent = range(max(1, i - 28), i)
        if any(equal(j, np.array([j - 1]))[0] for j in recent):
            continue
        then = frame.index[matches[-1]]
        label = then.date().isoformat() if isinstance(then, pd.Timestamp) else str(then)
        # the value: how many partitions back the same content was delivered
        findings.append(Finding(
            at=frame.index[i], value=float(i - matches[-1]), expected=None, lower=None,
            upper=None, score=1.0,
            detail=f"[repeats] this batch's content is identical to the batch of {label} "
                   f"(all {int(present[i].sum())} profile metrics): stale data delivered "
                   f"again under a new date"))
    if not judged:
        return Detection(detector, skipped=f"history under {min_history} batches")
    return Detection(detector, findings=tuple(findings))
