"""Incidents: one cause, one incident.

Alerts that opened on the same partition of a dataset and of the datasets built from it
(lineage: `monitors.pipeline.lineage`), or several alerts of one dataset that opened on one
partition (a volume drop seen by several monitors, a schema change breaking several
columns), are one incident. Its **root** is the most upstream alert, then the earliest
(first seen, then lowest id); the others are marked `caused_by` the root. An alert belongs
to the partition it opened on: its first firing. A condition that began earlier (a drift
still firing) is not pulled into a later partition's incident.

What follows from it, each rule where it is applied:

- only the root is notified (`monitors.lifecycle.notify` keeps caused alerts quiet);
- acknowledging or resolving the root applies to its caused alerts, each one's timeline
  saying so (`monitors.lifecycle.alerts.acknowledge`, `resolve`); a mute covering the root covers
  the incident (`monitors.pipeline.gates`);
- a person can split an alert out of its incident (`split`): it stands alone from then
  on, and is never grouped again.

`group_incidents` runs after a run records a partition's alerts (`monitors.pipeline.run`). It is
idempotent: grouping the same alerts again changes nothing. When an upstream alert opens
after its downstream knock-on (the upstream's run came later), the knock-on, and what it
had caused, move under the new root.

The caller owns the transaction: these functions flush, never commit.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from monitors.errors import Refused
from monitors.lifecycle.alerts import SYSTEM, EventKind, _get_for_change, _when, _who
from monitors.pipeline.gates import refresh_gates_of
from monitors.pipeline.lineage import Lineage, read_lineage
from store.locks import lock_for_write
from store.models import UNRESOLVED, Alert, AlertEvent, AlertOccurrence


def group_incidents(session: Session, alert_ids: Iterable[int], *, now: dt.datetime) -> None:
    """Form the incidents of the partitions on which these alerts opened (a run's new and
    reopened alerts), over every dataset: roots, and `caused_by` on the others."""
    ids = sorted(set(alert_ids))
    if not ids:
        return
    lock_for_write(session)
    session.flush()
    partitions = _opening_partitions(session, ids)
    lineage = read_lineage(session)
    for partition in sorted(set(partitions.values())):
        _group_partition(session, partition, lineage, now)
    session.flush()


def split(session: Session, alert_id: int, *, by: str, now: dt.datetime | None = None) -> Alert:
    """Take an alert out of its incident by hand: it stands alone from now on (and a
    caused alert that was kept quiet is not notified after the fact)."""
    by, now = _who(by), _when(now)
    alert = _get_for_change(session, alert_id, None)
    if alert.caused_by is None:
        raise Refused(f"alert {alert_id} is not caused by another alert: there is no "
                      "incident to split it from")
    root_id = alert.caused_by
    alert.caused_by, alert.incident_split = None, True
    session.add(AlertEvent(alert_id=alert.id, kind=EventKind.split, by=by, at=now,
                           note=f"split out of the incident of #{root_id}"))
    session.add(AlertEvent(alert_id=root_id, kind=EventKind.split, by=by, at=now,
                           note=f"#{alert.id} split out of this incident"))
    session.flush()
    refresh_gates_of(session, [alert], now=now)
    return alert


def caused_alerts(session: Session, root_id: int) -> list[Alert]:
    """The alerts an incident's root caused, oldest first."""
    return list(session.scalars(select(Alert).where(Alert.caused_by == root_id)
                                .order_by(Alert.id)).all())


def _opening_partitions(session: Session, ids: list[int]) -> dict[int, dt.date]:
    rows = session.execute(select(AlertOccurrence.alert_id, func.min(AlertOccurrence.partition))
                           .where(AlertOccurrence.alert_id.in_(ids))
                           .group_by(AlertOccurrence.alert_id)).all()
    return dict(rows)


def _group_partition(session: Session, partition: dt.date, lineage: Lineage,
                     now: dt.datetime) -> None:
    here, earlier = aliased(AlertOccurrence), aliased(AlertOccurrence)
    # (no DISTINCT over a join: PostgreSQL refuses FOR UPDATE with it)
    candidates = session.scalars(
        select(Alert)
        .where(Alert.status.in_(UNRESOLVED), Alert.incident_split.is_(False),
               exists().where(here.alert_id == Alert.id, here.partition == partition),
               ~exists().where(earlier.alert_id == Alert.id, earlier.partition < partition))
        .with_for_update().execution_options(populate_existing=True)).all()
    # the most upstream, then the earliest: the first unclaimed one is a root, and claims
    # the alerts of its dataset and of every dataset built from it
    ordered = sorted(candidates, key=lambda a: (lineage.depth(a.dataset_id), a.first_seen_at, a.id))
    claimed: set[int] = set()
    for root in ordered:
        if root.id in claimed:
            continue
        claimed.add(root.id)
        _point(session, root, None, lineage, now)
        reach = {root.dataset_id, *lineage.descendants(root.dataset_id)}
        for alert in ordered:
            if alert.id not in claimed and alert.dataset_id in reach:
                claimed.add(alert.id)
                _point(session, alert, root, lineage, now)


def _point(session: Session, alert: Alert, root: Alert | None, lineage: Lineage,
           now: dt.datetime) -> None:
    """Mark `alert` as caused by `root` (None: a root), with a timeline event on a change."""
    wanted = root.id if root is not None else None
    if alert.caused_by == wanted:
        return
    before = alert.caused_by
    alert.caused_by = wanted
    if root is not None:
        where = f" on {root.column}" if root.column else ""
        note = (f"caused by #{root.id}: {lineage.names[root.dataset_id]} {root.monitor}{where} "
                f"on {root.partition}")
    else:
        note = f"no longer caused by #{before}: it leads its own incident"
    session.add(AlertEvent(alert_id=alert.id, kind=EventKind.grouped, by=SYSTEM, at=now,
                           note=note))
