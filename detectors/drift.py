"""Distribution drift computed from stored profiles, never from raw history.

A batch's profile is all that is kept of it (DESIGN.md: history is kept as metrics), so
drift is measured between sketches:

- a numeric column's profile is its quantiles p01, p05, p25, p50, p75, p95, p99, its min
  and max, and its count (`numeric_profile` builds one);
- a categorical column's profile is the counts of its top-k categories plus an "other"
  count for the rest (`categorical_profile`).

Numbers: each sketch stands for a distribution whose quantile function passes through the
knots. Between knots it is interpolated monotonically, by a shape-preserving cubic (PCHIP)
by default or piecewise-linearly (`interpolation="linear"`, the plain piecewise-linear CDF).
On normal, log-normal, exponential, beta and mixture samples, PSI from PCHIP sketches came
within 7% of PSI from the raw data with the same decile bins; the linear CDF was off by up
to 80% on skewed data (linear interpolation between p50, p75 and p95 puts too much mass in
the tail). PSI uses ten bins of equal reference mass (the reference's deciles) because that
is the binning the usual PSI rules of thumb were calibrated on; the KS-style distance is
the largest gap between the two CDFs.

Limits of a sketch: it knows that a value repeats (p01 = p05 = p25 = 0) but not how
often beyond the knots, and nothing about the gaps between integers. Zero-inflated and
small-integer columns therefore get a coarser PSI (measured 0.24 against 0.12 on raw data
for zeros going from 30% to 50%; 0.18 against 0.10 for Poisson(3) -> Poisson(3.6)); a
column with a handful of distinct values is better profiled as categories.

Categories: chi-square on the 2 x k table of counts, and the Jensen-Shannon distance
(base 2, so in [0, 1]). A category listed on one side but hidden in the other side's
"other" bucket can't be compared, so it is moved into "other" on both sides.

Why the limits are effect sizes. With a million rows per batch any difference is
"significant": a 0.01-standard-deviation shift between two samples of a million has a KS
p-value near 1e-15 and means nothing to a model. So a drift fires when the effect is large
enough to matter AND the difference is unlikely to be sampling noise (p < alpha), never on
the p-value alone:
- PSI >= 0.2: the credit-scoring rule of thumb (under 0.1 stable, 0.1-0.25 a shift worth
  a look, above 0.25 a major shift); 0.2 is about a half-standard-deviation shift of the
  mean of a normal (PSI 0.24; 0.2 sd gives 0.04) or its spread growing 1.5x (PSI 0.19).
- JS >= 0.1: a 50/50 split becoming about 62/38, one of ten equal categories doubling its
  share, or 2% of rows landing in a category never seen before.
The significance gate matters for small batches, where a sketch of 50 rows moves a lot by
chance: PSI's sampling distribution is PSI / (1/n + 1/m) ~ chi-square(bins - 1). That is
an approximation for small batches: over a year of daily log-normal batches with no drift,
trailing-7 references and alpha 0.01, 10 days fired at 40 rows a batch (a quarter of the
days had PSI >= 0.2), 1 at 100 rows, none at 1,000.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.interpolate import PchipInterpolator
from scipy.spatial.distance import jensenshannon

from detectors._rules import check_choice, check_integer, check_number, under_test
from detectors.numbers import fmt_number
from detectors.result import Detection, Finding

QUANTILES: dict[str, float] = {"p01": 0.01, "p05": 0.05, "p25": 0.25, "p50": 0.50,
                               "p75": 0.75, "p95": 0.95, "p99": 0.99}
NUMERIC_KEYS = ("min", *QUANTILES, "max", "count")
INTERPOLATIONS = ("pchip", "linear")
REFERENCES = ("previous", "trailing")
KINDS = ("auto", "numeric", "categorical")

MAX_PSI = 0.2
MAX_JS = 0.1
ALPHA = 0.01
MIN_COUNT = 30
# PSI's usual floor for an empty bin: without one a single empty bin makes PSI infinite
_EMPTY_BIN = 1e-4
# points of the dense quantile function a PCHIP sketch is sampled at
_DENSE = np.linspace(0.0, 1.0, 801)


# --- profiles ------------------------------------------------------------------------------


def numeric_profile(values: Iterable[float] | pd.Series) -> dict[str, float]:
    """The profile this module reads, from raw values (nulls and infinities left out)."""
    arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64")
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"count": 0.0}
    qs = np.quantile(arr, list(QUANTILES.values()))
    out = {"min": float(arr.min()), **{k: float(q) for k, q in zip(QUANTILES, qs)},
           "max": float(arr.max()), "count": float(arr.size)}
    return out


def categorical_profile(values: Iterable[Any] | pd.Series, *, top_k: int = 20,
                        other: str = "other") -> dict[str, float]:
    """Counts of the `top_k` most frequent categories plus `other` for the rest (nulls are
    not a category here: the null fraction is watched as its own metric)."""
    check_integer(top_k, "top_k", ge=1)
    counts = pd.Series(values).dropna().astype(str).value_counts()
    if other in counts.index:
        raise ValueError(f"categorical_profile: a category is literally named {other!r}; "
                         f"pass another name as other=")
    top = counts.iloc[:top_k]
    out = {str(k): float(v) for k, v in top.items()}
    out[other] = float(counts.iloc[top_k:].sum())
    return out


# --- comparing two profiles -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NumericDrift:
    """PSI and KS-style distance between two numeric sketches, and the verdict."""

    psi: float
    ks: float
    psi_pvalue: float | None      # None when a profile has no count
    ks_pvalue: float | None
    n_reference: float | None
    n_current: float | None
    median_reference: float
    median_current: float
    drifted: bool
    # "PSI 0.31 (limit 0.20, p < 1e-16), KS 0.21 (p < 1e-16); median 0.41 -> 0.58"
    detail: str
    skipped: str | None = None


@dataclass(frozen=True, slots=True)
class CategoricalDrift:
    """Jensen-Shannon distance and chi-square between two category-count profiles."""

    js: float
    chi2: float
    chi2_pvalue: float
    dof: int
    n_reference: float
    n_current: float
    drifted: bool
    # "JS 0.14 (limit 0.10), chi2 812.0 (p < 1e-16); most moved: 'FR' 31.0% -> 12.0%"
    detail: str
    skipped: str | None = None


def numeric_drift(reference: Mapping[str, float], current: Mapping[str, float], *,
                  max_psi: float = MAX_PSI, max_ks: float | None = None, alpha: float = ALPHA,
                  bins: int = 10, interpolation: str = "pchip",
                  min_count: int = MIN_COUNT) -> NumericDrift:
    """Drift between two numeric profiles (keys min, p01..p99, max and, optionally, count).

    Drifted when PSI >= max_psi (or KS >= max_ks, if given) and, when both counts are
    known, that distance's own test says the difference is significant at `alpha`. Profiles with fewer than `min_count`
    values are not judged (`skipped`).
    """
    _numeric_options(max_psi, max_ks, alpha, bins, interpolation, min_count)
    ref = _sketch(reference, "reference", interpolation)
    cur = _sketch(current, "current", interpolation)
    return _compare_numeric(ref, cur, max_psi=max_psi, max_ks=max_ks, alpha=alpha, bins=bins,
                            min_count=min_count)


def categorical_drift(reference: Mapping[str, float], current: Mapping[str, float], *,
                      other: str = "other", max_js: float = MAX_JS, alpha: float = ALPHA,
                      min_count: int = MIN_COUNT) -> CategoricalDrift:
    """Drift between two category-count profiles ({category: count, ..., other: count}).

    Drifted when the Jensen-Shannon distance >= max_js and the chi-square test rejects
    "same distribution" at `alpha`.
    """
    _categorical_options(max_js, alpha, min_count)
    ref = _counts(reference, "reference", other)
    cur = _counts(current, "current", other)
    return _compare_categorical(ref, cur, max_js=max_js, alpha=alpha, min_count=min_count)


# --- over a series of profiles -----------------------------------------------------------------


def detect_drift(profiles: pd.DataFrame | Mapping[Any, Mapping[str, float]], *,
                 reference: str = "trailing", window: int | None = None, min_periods: int = 1,
                 since: Any = None, kind: str = "auto", name: str | None = None,
                 other: str = "other", max_psi: float = MAX_PSI, max_ks: float | None = None,
                 max_js: float = MAX_JS, alpha: float = ALPHA, bins: int = 10,
                 interpolation: str = "pchip", min_count: int = MIN_COUNT) -> Detection:
    """Each partition's profile compared with a reference made of earlier profiles.

    `profiles`: a DataFrame with one row per partition (index) and one column per profile
    key (min, p01, ..., count; or one column per category plus `other`, NaN where a
    category was not in that batch's top-k; no other columns), or a mapping
    partition -> profile.
    `reference`: "previous" (the partition before) or "trailing" (the `window` partitions
    before, default 7, merged into one distribution weighted by their counts).
    A partition is tested when at least `min_periods` of its reference partitions hold a
    usable profile; `since` limits the partitions under test (earlier ones are context).
    `kind` is found from the keys when "auto"; `name` (the column) goes into the details.
    """
    det = "drift"
    check_choice(reference, "reference", REFERENCES)
    if window is None:
        window = 1 if reference == "previous" else 7
    check_integer(window, "window", ge=1)
    if reference == "previous" and window != 1:
        raise ValueError(f"window: {window} contradicts reference='previous' "
                         f"(use reference='trailing')")
    check_integer(min_periods, "min_periods", ge=1)
    if min_periods > window:
        raise ValueError(f"min_periods: {min_periods} exceeds window ({window})")
    check_choice(kind, "kind", KINDS)
    if not isinstance(other, str):
        raise ValueError(f"other: expected the name of the 'other' category, got {other!r}")
    _numeric_options(max_psi, max_ks, alpha, bins, interpolation, min_count)
    _categorical_options(max_js, alpha, min_count)

    labels, row_at, present = _rows(profiles)
    # a since that does not fit is refused before any skip (a frame's own index as it is:
    # an index rebuilt from a list of timestamps cost a tenth of a backfill's drift time)
    index = labels if isinstance(labels, pd.Index) else pd.Index(labels)
    tested = np.flatnonzero(under_test(index, since)).tolist()
    if not len(labels):
        return Detection(det, skipped="no profiles")
    if kind == "auto":
        kind = "numeric" if all(k in present for k in QUANTILES) else "categorical"
    subject = name or "value"

    # only the partitions under test and their references are read: a daily run over years
    # of stored profiles parses eight of them, not every one (and a backfill converts
    # eight rows a call, not the whole window)
    needed = sorted({j for i in tested for j in range(max(0, i - window), i + 1)})
    rows = {j: row_at(j) for j in needed}
    parsed: dict[int, Any] = {j: _parse_row(rows[j], kind, interpolation, other) for j in needed}
    limit = max_psi if kind == "numeric" else max_js
    band_rows: dict[Any, list[float]] = {}
    findings: list[Finding] = []
    for i in tested:
        if parsed[i] is None:
            continue
        used = [j for j in range(max(0, i - window), i) if parsed[j] is not None]
        if len(used) < min_periods:
            continue
        # the merged reference, remembered by content: a pinned one is the same every partition
        against_ref = _reference([rows[j] for j in used], [parsed[j] for j in used], kind,
                                 interpolation, other)
        n_refs = len(used)
        if reference == "previous":
            against = "the previous batch"
        else:
            against = f"trailing {n_refs} batch{'es' if n_refs != 1 else ''}"
        if kind == "numeric":
            res = _compare_numeric(against_ref, parsed[i], max_psi=max_psi, max_ks=max_ks,
                                   alpha=alpha, bins=bins, min_count=min_count)
            if res.skipped:
                continue
            value, pvalue = res.psi, res.psi_pvalue
            band_rows[i] = [value, res.ks, _nan(pvalue), np.nan, 0.0, limit]
            if res.drifted:
                by_ks = not (res.psi >= max_psi and (pvalue is None or pvalue < alpha))
                dist, lim = (res.ks, max_ks) if by_ks else (res.psi, max_psi)
                measure = "KS" if by_ks else "PSI"
                findings.append(Finding(
                    at=labels[i], value=dist, expected=None, lower=None, upper=lim,
                    score=dist / lim, before=res.median_reference, after=res.median_current,
                    detail=f"[drift] {subject}: {measure} {dist:.2f} vs {against} "
                           f"(limit {lim:.2f}); median {fmt_number(res.median_reference)} -> "
                           f"{fmt_number(res.median_current)}"))
        else:
            res = _compare_categorical(against_ref, parsed[i], max_js=max_js,
                                       alpha=alpha, min_count=min_count)
            if res.skipped:
                continue
            band_rows[i] = [res.js, res.chi2, res.chi2_pvalue, np.nan, 0.0, limit]
            if res.drifted:
                findings.append(Finding(
                    at=labels[i], value=res.js, expected=None, lower=None, upper=max_js,
                    score=res.js / max_js,
                    detail=f"[drift] {subject}: JS {res.js:.2f} vs {against} "
                           f"(limit {max_js:.2f}); {res.detail.split('; ', 1)[-1]}"))
    if not band_rows:
        return Detection(det, skipped=_why_untested(labels, parsed, tested, window,
                                                    min_periods, min_count))
    # one array, not a frame from a dict of dicts: this is built once per monitor and partition
    columns = ["value", "ks" if kind == "numeric" else "chi2", "pvalue", "expected", "lower",
               "upper"]
    # the labels taken from the index as an array: an index built from a list of timestamps
    # infers their type one by one
    band = pd.DataFrame(np.array(list(band_rows.values()), dtype="float64"),
                        index=pd.Index(index.take(list(band_rows)).to_numpy()), columns=columns)
    return Detection(det, tuple(findings), band=band)


# --- numeric sketches ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sketch:
    """A distribution as a piecewise-linear CDF through (xs, ps): both non-decreasing,
    ps from 0 to 1; a repeated x is a jump (a point mass, such as a column of zeros)."""

    xs: np.ndarray
    ps: np.ndarray
    count: float | None
    # values at which two knots coincide: a point mass (zeros in an amount column)
    atoms: np.ndarray
    # a merged reference's CDF at its own distinct knots, (knots, F(x-), F(x)), computed
    # once when it is merged: the KS distance reads it for every partition compared with it
    # (a pinned reference: every partition after its window)
    at_knots: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _sketch(profile: Mapping[str, float], which: str, interpolation: str) -> _Sketch:
    if not isinstance(profile, Mapping):
        raise ValueError(f"{which} must be a mapping of profile keys, not {type(profile).__name__}")
    missing = [k for k in ("min", *QUANTILES, "max") if k not in profile]
    if missing:
        raise ValueError(f"{which} profile lacks {', '.join(missing)} "
                         f"(a numeric profile has min, p01..p99, max and count)")
    knots = np.array([_float(profile[k], f"{which}[{k!r}]") for k in ("min", *QUANTILES, "max")])
    if not np.all(np.isfinite(knots)):
        raise ValueError(f"{which} profile has missing or infinite quantiles")
    if np.any(np.diff(knots) < 0):
        raise ValueError(f"{which} profile's quantiles decrease: {knots.tolist()}")
    count = profile.get("count")
    if count is not None:
        count = _float(count, f"{which}['count']")
        if not math.isfinite(count) or count < 0:
            raise ValueError(f"{which}['count'] must be a count >= 0, got {count!r}")
    probs = np.array([0.0, *QUANTILES.values(), 1.0])
    atoms = np.unique(knots[1:][np.diff(knots) == 0])
    if interpolation == "linear" or knots[0] == knots[-1]:
        return _Sketch(knots, probs, count, atoms)
    dense = PchipInterpolator(probs, knots)(_DENSE)
    # PCHIP preserves monotonicity up to rounding; make it exact for searchsorted
    dense = np.maximum.accumulate(np.clip(dense, knots[0], knots[-1]))
    return _Sketch(dense, _DENSE.copy(), count, atoms)


def _cdf(s: _Sketch, x: np.ndarray, *, left: bool = False, x_sorted: bool = False) -> np.ndarray:
    """F(x) (right-continuous), or the left limit F(x-) when `left`. `x_sorted`: x is
    non-decreasing, so the segment of every x is found from where the sketch's knots fall
    among the x (a search per knot, not per x: a merge's grid has thousands of points)."""
    xs = s.xs
    x = np.asarray(x, dtype="float64")
    if x_sorted and len(x) > len(xs):
        # the knots at or below x[k] (strictly below when `left`) are those whose insertion
        # point among the x is at most k: the same integers as searching each x
        at = np.searchsorted(x, xs, side="right" if left else "left")
        j = np.cumsum(np.bincount(at, minlength=len(x) + 1))[:len(x)] - 1
    else:
        j = np.searchsorted(xs, x, side="left" if left else "right") - 1
    return _interpolate(s, x, j)


def _interpolate(s: _Sketch, x: np.ndarray, j: np.ndarray) -> np.ndarray:
    """The CDF at x, each x in the segment of the sketch's knot j (-1: before the first)."""
    xs, ps = s.xs, s.ps
    # every point interpolated in a clipped segment, then the ends set: the same numbers as
    # interpolating the inner points alone, without the masked copies (a backfill merges
    # thousands of references)
    jm = np.clip(j, 0, len(xs) - 2)
    x0, x1 = xs[jm], xs[jm + 1]
    p0, p1 = ps[jm], ps[jm + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(x1 > x0, (x - x0) / (x1 - x0), 1.0)
    out = p0 + np.clip(t, 0.0, 1.0) * (p1 - p0)
    out[j < 0] = 0.0
    out[j >= len(xs) - 1] = 1.0
    return out


def _quantile(s: _Sketch, p: np.ndarray) -> np.ndarray:
    """The smallest x with F(x) >= p, interpolated inside a CDF segment."""
    xs, ps = s.xs, s.ps
    p = np.asarray(p, dtype="float64")
    i = np.clip(np.searchsorted(ps, p, side="left"), 1, len(ps) - 1)
    p0, p1 = ps[i - 1], ps[i]
    x0, x1 = xs[i - 1], xs[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(p1 > p0, (p - p0) / (p1 - p0), 1.0)
    return x0 + np.clip(t, 0.0, 1.0) * (x1 - x0)


def _mix(sketches: list[_Sketch]) -> _Sketch:
    """One distribution from several batches, each weighted by its row count (equally when
    a count is unknown): the CDF of the union of their rows, up to the sketches' accuracy."""
    if len(sketches) == 1:
        return sketches[0]
    counts = [s.count for s in sketches]
    known = all(c is not None for c in counts)
    weights = np.array(counts if known else [1.0] * len(sketches), dtype="float64")
    weights = weights / weights.sum()
    grid = np.unique(np.concatenate([s.xs for s in sketches]))
    f_left = sum(w * _cdf(s, grid, left=True, x_sorted=True) for w, s in zip(weights, sketches))
    f_right = sum(w * _cdf(s, grid, x_sorted=True) for w, s in zip(weights, sketches))
    xs = np.repeat(grid, 2)
    ps = np.empty_like(xs)
    ps[0::2], ps[1::2] = f_left, f_right
    ps = np.maximum.accumulate(np.clip(ps, 0.0, 1.0))
    ps[0], ps[-1] = 0.0, 1.0
    merged = _Sketch(xs, ps, float(sum(counts)) if known else None,
                     np.unique(np.concatenate([s.atoms for s in sketches])))
    # its distinct knots are the grid, each twice in xs: the k-th's segment is 2k - 1 from
    # the left, 2k + 1 from the right (what a search would find, without searching)
    odd = np.arange(-1, len(xs), 2)
    return replace(merged, at_knots=(grid, _interpolate(merged, grid, odd[:-1]),
                                     _interpolate(merged, grid, odd[1:])))


def _knots_cdf(s: _Sketch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the distinct knots, F(x-) and F(x) there): remembered by a merged reference."""
    if s.at_knots is not None:
        return s.at_knots
    knots = np.unique(s.xs)
    return knots, _cdf(s, knots, left=True, x_sorted=True), _cdf(s, knots, x_sorted=True)


def _compare_numeric(ref: _Sketch, cur: _Sketch, *, max_psi: float, max_ks: float | None,
                     alpha: float, bins: int, min_count: int) -> NumericDrift:
    med_ref = float(_quantile(ref, np.array([0.5]))[0])
    med_cur = float(_quantile(cur, np.array([0.5]))[0])
    n, m = ref.count, cur.count
    small = [w for w, c in (("reference", n), ("current", m)) if c is not None and c < min_count]
    if small:
        sizes = ", ".join(f"{w} {int(c)}" for w, c in (("reference", n), ("current", m))
                          if c is not None)
        return NumericDrift(math.nan, math.nan, None, None, n, m, med_ref, med_cur, False,
                            f"too few values to judge ({sizes} < {min_count})",
                            skipped=f"fewer than {min_count} values")

    edges = np.unique(_quantile(ref, np.arange(1, bins) / bins))
    # A sketch knows a point mass is at v but not how big it is (only that it spans some
    # knots); an edge at v would split the mass from the values just above it, which the
    # sketches place differently. Merging those two bins: on a column with 30% then 50%
    # zeros, PSI 0.51 became 0.24 (the raw data, same bins: 0.16).
    smooth = edges[~np.isin(edges, np.concatenate([ref.atoms, cur.atoms]))]
    # ...unless nothing is left: a constant column that turns into another constant must
    # still be seen, so its one atom then stays an edge
    edges = smooth if smooth.size else edges
    mass_ref = np.diff(np.concatenate([[0.0], _cdf(ref, edges), [1.0]]))
    mass_cur = np.diff(np.concatenate([[0.0], _cdf(cur, edges), [1.0]]))
    used = (mass_ref > 1e-12) | (mass_cur > 1e-12)
    a = np.maximum(mass_cur[used], _EMPTY_BIN)
    e = np.maximum(mass_ref[used], _EMPTY_BIN)
    psi = float(np.sum((a - e) * np.log(a / e)))

    # the largest gap between the CDFs, from either side, at the knots of either: the knots
    # of each taken apart (the CDFs are evaluated point by point, so the same numbers as on
    # their union), the reference's own from what its merge remembered
    gaps = []
    for sketch, other in ((ref, cur), (cur, ref)):
        knots, f_left, f_right = _knots_cdf(sketch)
        gaps += [np.abs(f_right - _cdf(other, knots, x_sorted=True)),
                 np.abs(f_left - _cdf(other, knots, left=True, x_sorted=True))]
    gap = np.concatenate(gaps)
    ks = float(gap.max()) if gap.size else 0.0

    psi_p = ks_p = None
    if n is not None and m is not None and n > 0 and m > 0:
        scale = 1.0 / n + 1.0 / m
        dof = max(int(used.sum()) - 1, 1)
        psi_p = float(stats.chi2.sf(psi / scale, dof))
        ks_p = float(stats.kstwobign.sf(ks * math.sqrt(n * m / (n + m))))
    # significance is a gate, not the trigger: a trivial shift is significant at 1M rows.
    # Each distance is gated by its own test: the smaller of two p-values is a looser gate
    # than either.
    by_psi = psi >= max_psi and (psi_p is None or psi_p < alpha)
    by_ks = max_ks is not None and ks >= max_ks and (ks_p is None or ks_p < alpha)
    psi_text = f"PSI {psi:.2f} (limit {max_psi:.2f}" + \
        (f", p {_p(psi_p)})" if psi_p is not None else ")")
    ks_bits = [f"limit {max_ks:.2f}"] if max_ks is not None else []
    ks_bits += [f"p {_p(ks_p)}"] if ks_p is not None else []
    ks_text = f"KS {ks:.2f}" + (f" ({', '.join(ks_bits)})" if ks_bits else "")
    detail = f"{psi_text}, {ks_text}; median {fmt_number(med_ref)} -> {fmt_number(med_cur)}"
    return NumericDrift(psi, ks, psi_p, ks_p, n, m, med_ref, med_cur, by_psi or by_ks, detail)


# --- category counts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Counts:
    listed: dict[str, float]
    other: float

    @property
    def total(self) -> float:
        return sum(self.listed.values()) + self.other


def _counts(profile: Mapping[str, float], which: str, other: str) -> _Counts:
    if not isinstance(profile, Mapping):
        raise ValueError(f"{which} must be a mapping category -> count, "
                         f"not {type(profile).__name__}")
    listed: dict[str, float] = {}
    rest = 0.0
    for key, raw in profile.items():
        value = _float(raw, f"{which}[{key!r}]")
        if math.isnan(value):
            continue  # not in this batch's top-k
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{which}[{key!r}] must be a count >= 0, got {raw!r}")
        if str(key) == other:
            rest += value
        else:
            listed[str(key)] = listed.get(str(key), 0.0) + value
    return _Counts(listed, rest)


def _comparable(profiles: list[_Counts]) -> list[_Counts]:
    """The profiles restricted to categories whose count is known in every one of them: a
    category absent from a top-k list is known to be 0 only when that list's "other" is 0."""
    names = set().union(*(p.listed for p in profiles))
    keep = {c for c in names if all(c in p.listed or p.other == 0 for p in profiles)}
    out = []
    for p in profiles:
        moved = sum(v for c, v in p.listed.items() if c not in keep)
        out.append(_Counts({c: p.listed.get(c, 0.0) for c in sorted(keep)}, p.other + moved))
    return out


def _merge_counts(profiles: list[_Counts]) -> _Counts:
    aligned = _comparable(profiles)
    listed = {c: sum(p.listed[c] for p in aligned) for c in aligned[0].listed}
    return _Counts(listed, sum(p.other for p in aligned))


def _compare_categorical(ref: _Counts, cur: _Counts, *, max_js: float, alpha: float,
                         min_count: int) -> CategoricalDrift:
    n, m = ref.total, cur.total
    if n < min_count or m < min_count:
        return CategoricalDrift(math.nan, math.nan, math.nan, 0, n, m, False,
                                f"too few values to judge (reference {n:g}, current {m:g} "
                                f"< {min_count})", skipped=f"fewer than {min_count} values")
    a, b = _comparable([ref, cur])
    names = list(a.listed) + ["(other)"]
    table = np.array([[*a.listed.values(), a.other], [*b.listed.values(), b.other]])
    table = table[:, table.sum(axis=0) > 0]
    names = [nm for nm, keep in zip(names, np.array([*a.listed.values(), a.other])
                                    + np.array([*b.listed.values(), b.other]) > 0) if keep]
    p_ref, p_cur = table[0] / n, table[1] / m
    js = float(jensenshannon(p_ref, p_cur, base=2)) if table.shape[1] > 1 else 0.0
    if not math.isfinite(js):
        js = 0.0
    if table.shape[1] > 1:
        chi2, pvalue, dof, _ = stats.chi2_contingency(table, correction=False)
    else:
        chi2, pvalue, dof = 0.0, 1.0, 0
    mover = int(np.argmax(np.abs(p_cur - p_ref))) if table.shape[1] else 0
    moved = (f"{names[mover]!r} {p_ref[mover]:.1%} -> {p_cur[mover]:.1%}"
             if table.shape[1] else "no categories")
    drifted = bool(js >= max_js and pvalue < alpha)
    detail = (f"JS {js:.2f} (limit {max_js:.2f}), chi2 {chi2:,.1f} (p {_p(pvalue)}); "
              f"most moved: {moved}")
    return CategoricalDrift(js, float(chi2), float(pvalue), int(dof), n, m, drifted, detail)


# --- plumbing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    """A stored profile's present keys and their values, as bytes: hashable and exact to the
    bit (-0.0 and 0.0 differ), so it keys the caches of parsed sketches and references."""

    names: tuple[str, ...]
    values: bytes

    def profile(self) -> dict[str, float]:
        return dict(zip(self.names, np.frombuffer(self.values, dtype="float64").tolist()))


def _rows(profiles: Any) -> tuple[pd.Index | list[Any], Any, set[str]]:
    """The partitions (sorted), a function from a position to that partition's profile (a
    `_Row`, or a dict when the values are not all floats) and the keys present in any
    profile. A backfill passes its whole history window once per partition and monitor but
    reads eight rows of it: only those are converted."""
    if isinstance(profiles, pd.DataFrame):
        frame = profiles if profiles.index.is_monotonic_increasing else profiles.sort_index()
        if frame.index.has_duplicates:
            raise ValueError("profiles: duplicated partitions")
        names = [str(k) for k in frame.columns]
        if all(dtype.kind == "f" for dtype in frame.dtypes):
            values = frame.to_numpy(dtype="float64")
            known = ~np.isnan(values)
            present = {n for n, any_known in zip(names, known.any(axis=0)) if any_known}

            def row_at(j: int) -> _Row:
                keep = known[j]
                return _Row(tuple(n for n, k in zip(names, keep) if k), values[j][keep].tobytes())

            return frame.index, row_at, present
        rows = [{str(k): v for k, v in rec.items() if not _missing(v)}
                for rec in frame.to_dict(orient="records")]
        return frame.index, rows.__getitem__, set().union(*rows)
    if isinstance(profiles, Mapping):
        try:
            labels = sorted(profiles)
        except TypeError as exc:
            raise ValueError(f"profiles: partitions must be sortable: {exc}") from None
        rows = []
        for label in labels:
            prof = profiles[label]
            if not isinstance(prof, Mapping):
                raise ValueError(f"profiles: the profile of {label!r} is not a mapping")
            rows.append({str(k): v for k, v in prof.items() if not _missing(v)})
        return labels, rows.__getitem__, set().union(*rows)
    raise ValueError("profiles: expected a DataFrame (one row per partition) or a "
                     f"mapping partition -> profile, not {type(profiles).__name__}")


# Parsed profiles and merged references, by content. A backfill judges each partition
# against the 7 before it, so every profile is parsed up to 8 times; a pinned reference is
# the same weeks of profiles for every partition, merged anew each time. Both were most of
# a backfill's drift time. Bounded: a sketch is ~13 KB, a merged 28-day reference ~0.7 MB.
_PARSED_MAX = 4096
_REFERENCE_BYTES_MAX = 64 * 2**20
_parsed: OrderedDict[tuple, Any] = OrderedDict()
_references: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
_references_bytes = 0
# a reference is kept only when asked for a second time: a trailing reference never comes
# back in a backfill, and keeping those would push out the pinned ones that do
_asked: OrderedDict[int, None] = OrderedDict()
# runs are evaluated in a worker's threads, and the dashboard serves several sessions
_lock = threading.Lock()


def _parse_row(row: Any, kind: str, interpolation: str, other: str) -> Any:
    if not isinstance(row, _Row):
        return _parse(row, kind, interpolation, other)
    key = (row, kind, interpolation, other)
    with _lock:
        found = _parsed.get(key, _parsed)
        if found is not _parsed:
            _parsed.move_to_end(key)
            return found
    found = _parse(row.profile(), kind, interpolation, other)
    with _lock:
        _parsed[key] = found
        if len(_parsed) > _PARSED_MAX:
            _parsed.popitem(last=False)
    return found


def _reference(rows: list[Any], parsed: list[Any], kind: str, interpolation: str,
               other: str) -> Any:
    """The merged reference of `parsed` (the profiles `rows`, in order): the one computation
    of `_mix` or `_merge_counts`, remembered when the same rows come back."""
    global _references_bytes
    merge = _mix if kind == "numeric" else _merge_counts
    if len(parsed) == 1 or not all(isinstance(r, _Row) for r in rows):
        return merge(parsed)
    key = (tuple(rows), kind, interpolation, other)
    with _lock:
        found = _references.get(key)
        if found is not None:
            _references.move_to_end(key)
            return found[0]
    merged = merge(parsed)
    digest = hash(key)
    with _lock:
        if digest not in _asked:
            _asked[digest] = None
            if len(_asked) > _PARSED_MAX:
                _asked.popitem(last=False)
            return merged
        size = _nbytes(merged)
        if key not in _references:
            _references[key] = (merged, size)
            _references_bytes += size
        while _references_bytes > _REFERENCE_BYTES_MAX and len(_references) > 1:
            _, (_, freed) = _references.popitem(last=False)
            _references_bytes -= freed
    return merged


def _nbytes(merged: Any) -> int:
    if isinstance(merged, _Sketch):
        remembered = sum(a.nbytes for a in merged.at_knots) if merged.at_knots else 0
        return merged.xs.nbytes + merged.ps.nbytes + merged.atoms.nbytes + remembered
    return 100 * (len(merged.listed) + 1)


def _why_untested(labels, parsed, tested, window, min_periods, min_count) -> str:
    if not tested:
        return "no partitions under test"
    if all(parsed[i] is None for i in tested):
        return "no usable profile among the partitions under test"
    usable = sum(p is not None for p in parsed.values())
    if usable <= min_periods:
        return f"history too short: {usable} usable profile{'s' if usable != 1 else ''}, and a " \
               f"partition needs {min_periods} earlier one{'s' if min_periods != 1 else ''} " \
               f"to compare with"
    return f"no partition under test has {min_periods} usable reference profile(s) within " \
           f"the {window} before it and {min_count} values"


def _parse(row: dict[str, Any], kind: str, interpolation: str, other: str) -> Any:
    try:
        parsed = (_sketch(row, "profile", interpolation) if kind == "numeric"
                  else _counts(row, "profile", other))
    except ValueError:
        # an unusable stored profile (an all-null batch, a failed run) is a gap, not a crash
        return None
    return parsed if _size(parsed) > 0 else None


def _size(parsed: Any) -> float:
    if isinstance(parsed, _Sketch):
        return 1.0 if parsed.count is None else parsed.count
    return parsed.total


def _missing(v: Any) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _float(v: Any, where: str) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{where} must be a number, got {v!r}")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a number, got {v!r}") from None


def _nan(v: float | None) -> float:
    return math.nan if v is None else v


def _numeric_options(max_psi, max_ks, alpha, bins, interpolation, min_count) -> None:
    check_number(max_psi, "max_psi", gt=0)
    check_number(max_ks, "max_ks", gt=0, le=1, allow_none=True)  # a distance between CDFs
    check_number(alpha, "alpha", gt=0, le=1)
    check_integer(bins, "bins", ge=2)
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    check_integer(min_count, "min_count", ge=1)


def _categorical_options(max_js, alpha, min_count) -> None:
    check_number(max_js, "max_js", gt=0, le=1)  # a base-2 Jensen-Shannon distance
    check_number(alpha, "alpha", gt=0, le=1)
    check_integer(min_count, "min_count", ge=1)


def _p(p: float) -> str:
    return "< 1e-16" if p < 1e-16 else (f"{p:.2g}" if p < 0.01 else f"{p:.2f}")
