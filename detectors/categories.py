"""New categories: values that take a real share of a batch but were never seen in the
recent history. Works from stored top-k frequencies, so no raw history is needed."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors._rules import check_integer, check_number, under_test
from detectors.result import Detection, Finding

NAME = "new_category"


def detect_new_categories(counts: pd.DataFrame, *, lookback: int = 28, min_share: float = 0.01,
                          min_history: int = 7, since=None) -> Detection:
    """`counts`: one row per partition (sorted index), one column per category, the number
    of rows with that value (missing = 0). A category is new at a point when it holds at
    least `min_share` of that point's rows and had no row in the `lookback` points before.
    Points before `since` are context only."""
    check_integer(lookback, "lookback", ge=1)
    check_number(min_share, "min_share", gt=0, lt=1)
    check_integer(min_history, "min_history", ge=1)
    if not isinstance(counts, pd.DataFrame):
        raise ValueError(f"counts: expected a pandas DataFrame, got {type(counts).__name__}")
    under_test(counts.index, since)  # a since that does not fit is refused before any skip
    if counts.empty:
        return Detection(NAME, skipped="no category counts")
    if not counts.notna().to_numpy().any():
        return Detection(NAME, skipped="every count is missing")
    counts = counts.sort_index().fillna(0)
    positions = np.flatnonzero(under_test(counts.index, since)).tolist()
    findings = []
    for i in positions:
        history = counts.iloc[max(0, i - lookback):i]
        if len(history) < min_history:
            continue
        row = counts.iloc[i]
        total = row.sum()
        if total <= 0:
            continue
        seen = history.sum() > 0
        for category, count in row.items():
            share = count / total
            if share >= min_share and not seen.get(category, False):
                findings.append(Finding(
                    at=counts.index[i], value=float(share), expected=0.0, lower=None,
                    upper=min_share, score=float(share / min_share),
                    detail=f"[{NAME}] {category!r} holds {share:.1%} of rows, unseen in the "
                           f"previous {len(history)} batches"))
    if not findings and all(len(counts.iloc[max(0, i - lookback):i]) < min_history for i in positions):
        return Detection(NAME, skipped=f"history shorter than {min_history} batches")
    return Detection(NAME, findings=tuple(findings))
