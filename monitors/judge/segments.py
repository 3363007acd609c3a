"""Where a volume change comes from: the segment (a category of one column) that carries
most of the rows gone or added, read from the stored category counts of each batch, so no
raw data is read again ("91% of the missing rows are province = MADRID").

Only counts per category are stored, not their cross-tabulations, so a null-fraction or a
level change cannot be attributed the same way; that needs per-segment profiles."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

BASELINE_BATCHES = 7   # the batches before the partition whose median is "expected"
MIN_BASELINE = 3       # fewer and there is no expectation to compare with
MIN_SHARE = 0.5        # a segment named must carry at least half of the change,
MIN_LIFT = 1.5         # and half again its usual share of the rows: a segment holding half
                       # the rows holds half of any even drop, which explains nothing


@dataclass(frozen=True, slots=True)
class Segment:
    column: str
    value: str
    share: float      # of the whole change in rows, 0..1
    rows: float       # rows gone (negative) or added (positive) in this segment

    def sentence(self) -> str:
        word = "missing" if self.rows < 0 else "extra"
        return f"{self.share:.0%} of the {word} rows are {self.column} = {self.value}"


def explain_volume(history, partition: dt.date) -> Segment | None:
    """The one segment that explains most of the partition's change in rows against the
    median of the batches before it, over every column with stored category counts; None
    when no segment carries far more of it than of the usual rows (the change is spread
    out)."""
    at = pd.Timestamp(partition)
    best: Segment | None = None
    for column in history.columns_with("freq"):
        counts = history.categories(column, partition)
        if at not in counts.index:
            continue
        before = counts[counts.index < at].tail(BASELINE_BATCHES)
        if len(before) < MIN_BASELINE:
            continue
        delta = counts.loc[at].fillna(0) - before.median().fillna(0)
        total = float(delta.sum())
        if total == 0:
            continue
        moved = delta if total > 0 else -delta
        value = moved.drop(labels="other", errors="ignore").idxmax()
        share = min(1.0, float(moved[value]) / abs(total))
        usual = float(before.median()[value]) / max(float(before.median().sum()), 1.0)
        if (share >= MIN_SHARE and share >= MIN_LIFT * usual
                and (best is None or share > best.share)):
            best = Segment(column, str(value), share, float(delta[value]))
    return best
