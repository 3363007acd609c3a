"""Pinned references for drift: a column's distribution judged against a fixed window (the
model's training period, or the dataset's first partitions) as well as against the recent
batches. The recent window forgets a drift that persists a week; the pinned one does not,
so a persistent drift stays one open alert until it is fixed or accepted.

An accepted new normal of the metric (monitors.judge.baselines) moves the reference: from the
marker on, the first partitions at or after it are the reference, as many as the pinned
window held (at least `MIN_REFERENCE`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from detectors.result import Finding
from monitors.config import DatasetConfig
from store.models import Batch, BatchStatus

MIN_REFERENCE = 7
# a dataset that is not declared gets the declared default's reference
DEFAULT_REFERENCE_WEEKS = DatasetConfig.model_fields["default_reference_weeks"].default


@dataclass(frozen=True, slots=True)
class Window:
    start: dt.date
    end: dt.date
    # the default reference judges only the partitions after it: before its end it would be
    # cut to the partitions before the one judged, and whether it exists at all would depend
    # on how many partitions had landed by then (a run and its replay would disagree)
    after_end_only: bool = False

    @property
    def label(self) -> str:
        return f"{self.start}..{self.end}"

    @property
    def kind(self) -> str:
        """What a person reads it as: one somebody pinned, or the dataset's first weeks."""
        return "default reference" if self.after_end_only else "pinned reference"


class References:
    """A dataset's pinned windows, by column (None: every drift monitor of the dataset)."""

    def __init__(self, windows: dict[str | None, Window] | None = None):
        self._windows = windows or {}

    def window(self, column: str | None, partition: dt.date | None = None) -> Window | None:
        """The column's window (else the dataset's), or None when it does not judge
        `partition` (given: a default reference is not in force until after its end)."""
        window = self._windows.get(column) or self._windows.get(None)
        if window is not None and window.after_end_only and partition is not None \
                and partition <= window.end:
            return None
        return window

    def earliest(self) -> dt.date | None:
        """The oldest partition a reference reads: a run loads its history from there."""
        return min((w.start for w in self._windows.values()), default=None)

    def __bool__(self) -> bool:
        return bool(self._windows)


def _first_partitions(session: Session, dataset_id: int, count: int) -> list[dt.date]:
    return session.scalars(
        select(Batch.partition).where(Batch.dataset_id == dataset_id,
                                      Batch.status != BatchStatus.quarantined)
        .distinct().order_by(Batch.partition).limit(count)).all()


def load_references(session: Session, dataset_id: int,
                    declared: DatasetConfig | None) -> References:
    """The declared references, `first: N` resolved to the dates of the dataset's first N
    partitions with a batch (a reference with none yet is left out). With none declared for
    the whole dataset, its first `default_reference_weeks` weeks of partitions are the
    reference, once it has that many (a partial one would judge a young dataset against
    a handful of batches), and for the partitions after them only."""
    windows: dict[str | None, Window] = {}
    for reference in (declared.references if declared else []):
        if reference.first is not None:
            days = _first_partitions(session, dataset_id, reference.first)
            if not days:
                continue
            windows[reference.column] = Window(days[0], days[-1])
        else:
            windows[reference.column] = Window(reference.start, reference.end)
    weeks = declared.default_reference_weeks if declared else DEFAULT_REFERENCE_WEEKS
    if None not in windows and weeks:
        days = _first_partitions(session, dataset_id, weeks * 7)
        if len(days) == weeks * 7:
            windows[None] = Window(days[0], days[-1], after_end_only=True)
    return References(windows)


def pinned_drift(spec, profiles: pd.DataFrame, partition: dt.date, window: Window,
                 moved_to: dt.date | None) -> Finding | None:
    """The partition's profile against the pinned window's profiles merged (the drift
    detector's own comparison, with the window as its trailing reference). `profiles`: the
    column's history as the monitor reads it (quantiles or category counts); `moved_to`:
    an accepted new normal's first partition, which replaces the window."""
    from detectors.drift import detect_drift

    at = pd.Timestamp(partition)
    if at not in profiles.index:
        return None
    index = profiles.index
    if moved_to is not None and pd.Timestamp(moved_to) > pd.Timestamp(window.start):
        size = max(MIN_REFERENCE, (window.end - window.start).days + 1)
        after = index[(index >= pd.Timestamp(moved_to)) & (index < at)][:size]
        label = f"the {len(after)} partitions from the accepted new normal on"
    else:
        after = index[(index >= pd.Timestamp(window.start)) & (index <= pd.Timestamp(window.end))
                      & (index < at)]
        label = f"the {window.kind} {window.label}"
    if len(after) == 0:
        return None
    # by position: a list of labels through .loc cost more than the comparison it feeds
    frame = profiles.iloc[[*index.get_indexer(after), index.get_loc(at)]]
    options = {k: v for k, v in spec.options.items() if k not in ("reference", "window")}
    detection = detect_drift(frame, reference="trailing", window=len(after), since=at,
                             name=spec.column, **options)
    finding = next((f for f in detection.findings if pd.Timestamp(f.at) == at), None)
    if finding is None:
        return None
    trailing = f"trailing {len(after)} batch{'es' if len(after) != 1 else ''}"
    return replace(finding, detail=finding.detail.replace(trailing, label))
