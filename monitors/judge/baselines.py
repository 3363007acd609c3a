"""Accepting a change as the new normal: baseline markers.

Someone looks at a level change, an anomaly or a drift and says "this is how it is now".
`accept` stores a marker (dataset, column, metric, from which partition, who, when, why) and
resolves the alert as expected. From that partition on, every monitor of that metric judges
only the history at or after the marker: `Baselines.start` is the one rule, which
`monitors.judge.evaluate.MetricHistory` applies for runs, backtests and charts alike. So the
accepted level is the only history the monitors see and the alert does not come back for it.
`unaccept` withdraws the marker (kept, with who and when, for the audit) and reopens the
alert: the monitors judge on the whole history again.

The caller owns the transaction: these functions flush, never commit.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitors.errors import NotFound, Refused
from store.models import Alert, AlertOccurrence, Baseline, Dataset, utcnow

# the alerts that say "the metric changed": a new level, a point off its band, a drift.
# Checks, contract breaks and late batches are not a level anyone can accept.
ACCEPTABLE = ("breakouts", "anomalies", "drift")
# the stored metrics a monitor's `metric` stands for when it reads a profile, not a series
_CATEGORY_METRICS = ("freq", "freq_other")


def family(metric: str) -> str:
    """The monitor metric a stored metric belongs to: a drift monitor of "quantiles" reads
    min, p01 ... max and count; one of "freq" reads freq and freq_other."""
    if metric in _CATEGORY_METRICS:
        return "freq"
    from monitors.intake.profile import (
        QUANTILE_KEYS,  # pandas and pyarrow: only where history is read
    )

    return "quantiles" if metric in QUANTILE_KEYS else metric


@dataclass(frozen=True, slots=True)
class Marker:
    column: str | None
    metric: str
    from_partition: dt.date
    created_by: str
    note: str | None
    alert_id: int | None


class Baselines:
    """A dataset's markers in force, asked per (column, metric) and partition."""

    def __init__(self, markers: Iterable[Marker] = ()):
        self._markers: dict[tuple[str, str], list[Marker]] = {}
        for marker in markers:
            self._markers.setdefault((marker.column or "", marker.metric), []).append(marker)
        for found in self._markers.values():
            found.sort(key=lambda m: m.from_partition)

    def marker(self, column: str | None, metric: str, until: dt.date) -> Marker | None:
        """The marker a monitor of (column, metric) judging `until` is under: the newest at
        or before `until`; None when none is in force there (a rerun of a partition before
        the marker sees what it saw then)."""
        found = self._markers.get((column or "", family(metric)))
        before = [m for m in found or () if m.from_partition <= until]
        return before[-1] if before else None

    def start(self, column: str | None, metric: str, until: dt.date) -> dt.date | None:
        """The first partition a monitor of (column, metric) judging `until` may read."""
        marker = self.marker(column, metric, until)
        return marker.from_partition if marker is not None else None

    def __bool__(self) -> bool:
        return bool(self._markers)


def load_baselines(session: Session, dataset_id: int,
                   as_of: dt.datetime | None = None) -> Baselines:
    return Baselines(list_markers(session, dataset_id, as_of=as_of))


def list_markers(session: Session, dataset_id: int, column: str | None = None,
                 metric: str | None = None, *, as_of: dt.datetime | None = None) -> list[Marker]:
    """The markers in force on a dataset (one column's and metric's when given), oldest
    partition first; `as_of`: the ones in force at that time (what a past run judged under,
    for its replay), not now."""
    if as_of is None:
        query = select(Baseline).where(Baseline.dataset_id == dataset_id,
                                       Baseline.removed_at.is_(None))
    else:
        query = select(Baseline).where(Baseline.dataset_id == dataset_id,
                                       Baseline.created_at <= as_of,
                                       (Baseline.removed_at.is_(None)) | (Baseline.removed_at > as_of))
    if column is not None:
        query = query.where(Baseline.column == column)
    if metric is not None:
        query = query.where(Baseline.metric == family(metric))
    rows = session.scalars(query.order_by(Baseline.from_partition, Baseline.id)).all()
    return [Marker(r.column, r.metric, r.from_partition, r.created_by, r.note, r.alert_id)
            for r in rows]


def accept(session: Session, alert_id: int, *, by: str, note: str | None = None,
           now: dt.datetime | None = None, seen: str | None = None) -> Baseline:
    """Accept an alert's change as the new normal: a marker from its change point (a
    breakout's first new partition, else the alert's first firing) and the alert resolved
    as expected. `seen`: the status the person saw (monitors.lifecycle.alerts.AlertChanged)."""
    from monitors.lifecycle.alerts import resolve

    now = now or utcnow()
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    metric = (alert.evidence or {}).get("metric")
    if alert.detector not in ACCEPTABLE or not metric:
        raise Refused(f"alert {alert_id} ({alert.monitor}, {alert.detector}) is not a change of "
                      f"a metric: only level changes, anomalies and drift can be accepted as "
                      f"the new normal; resolve it instead")
    if _marker_of(session, alert_id) is not None:
        raise Refused(f"alert {alert_id} is already accepted as the new normal")
    start = change_point(session, alert)
    where = f"{alert.column}·{metric}" if alert.column else metric
    text = f"accepted as the new normal: {where} judged from partition {start} on"
    resolve(session, alert_id, by=by, resolution="expected", now=now, seen=seen,
            note=f"{text} ({note})" if note else text)
    marker = Baseline(dataset_id=alert.dataset_id, column=alert.column, metric=family(metric),
                      from_partition=start, alert_id=alert_id, created_by=by.strip(),
                      created_at=now, note=note)
    session.add(marker)
    session.flush()
    return marker


def unaccept(session: Session, alert_id: int, *, by: str,
             now: dt.datetime | None = None) -> Alert:
    """Withdraw an acceptance: the marker is no longer in force and the alert is open
    again, so the monitors judge on the whole history as before."""
    from monitors.lifecycle.alerts import reopen

    now = now or utcnow()
    marker = _marker_of(session, alert_id)
    if marker is None:
        if session.get(Alert, alert_id) is None:
            raise NotFound(f"no alert with id {alert_id}")
        raise Refused(f"alert {alert_id} is not accepted as the new normal: nothing to undo")
    alert = reopen(session, alert_id, by=by, now=now,
                   note=f"acceptance withdrawn: {marker.metric} judged on its whole history again "
                        f"(was from partition {marker.from_partition})")
    marker.removed_by, marker.removed_at = by.strip(), now
    session.flush()
    return alert


def change_point(session: Session, alert: Alert) -> dt.date:
    """Where the accepted change begins: the breakout's first new partition, else the
    first partition the alert fired on."""
    breakout_at = (alert.evidence or {}).get("breakout_at")
    if breakout_at:
        return dt.date.fromisoformat(str(breakout_at)[:10])
    first = session.scalar(select(AlertOccurrence.partition)
                           .where(AlertOccurrence.alert_id == alert.id)
                           .order_by(AlertOccurrence.partition).limit(1))
    return first or alert.partition


def _marker_of(session: Session, alert_id: int) -> Baseline | None:
    return session.scalars(select(Baseline).where(Baseline.alert_id == alert_id,
                                                  Baseline.removed_at.is_(None))).first()


def markers_document(session: Session, dataset: Dataset, column: str | None,
                     metric: str | None) -> list[dict[str, Any]]:
    """The markers an alert's chart draws (vertical lines): partition, who, note."""
    if not metric:
        return []
    found = [m for m in list_markers(session, dataset.id, metric=metric)
             if (m.column or None) == (column or None)]
    return [{"at": m.from_partition.isoformat(), "by": m.created_by, "note": m.note,
             "alert_id": m.alert_id} for m in found]
