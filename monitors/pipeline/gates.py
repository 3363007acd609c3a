"""Gates: may the stages that build on a partition use it?

A partition of a dataset is **safe** unless it, or the same partition of a dataset it is
built from (its upstreams, transitively: `monitors.pipeline.lineage`), has an alert that
holds it: one at the dataset's gate severity or worse, open or acknowledged, fired on that
partition (and not cleared there by a later pass), and not muted, neither itself nor through
the root of its incident. Otherwise it is **held** by those alerts.

An alert its monitor resolved by passing on a *later* partition still holds this one: the
condition ended, this partition's data was not fixed (a sign-flipped snapshot followed by
a good one). It holds until the partition itself passes (a corrected rerun clears its
occurrence), a person resolves it, or, for a knock-on resolved with its incident, the root
passes on this partition.

A critical alert holds every partition it fires on. An alert below critical (a gate set to
hold on warnings) holds only the first partition it fired on and still stands on: where the
change appeared. The later partitions of a lasting condition (a drift against the reference,
a new level, a new model version) carry a change a person has already been told of; holding
each of them until someone accepts it would stop delivery for good on what is often the new
normal (on the demo: every day after the model's rollout). Make a monitor critical to hold
every day it fires (`severity: critical`).

The gate severity is the dataset's own choice, in the config (`gate: {holds_on: warning}`;
default `critical`, stored on the dataset row as `gate_holds_on`), and applies to every alert
in its scope, its upstreams' included: the dataset whose stages feed consumers decides how
strict its gate is, not the datasets it reads. `holding_severities` is the one place that
turns the setting into the severities that hold.

`gate_verdict` is what an external orchestrator's sensor calls (Airflow, Dagster, cron):

    from monitors.pipeline.gates import gate_verdict
    verdict = gate_verdict(load_settings(), "model_scores", "2026-06-30")
    if verdict.safe: ...            # else verdict.holding lists the alerts, worst first

and what `python -m monitors gate --dataset D --date P [--json]` prints (exit 0 safe,
1 held, 2 unknown dataset or partition).

The verdict is derived from alerts and mutes, never stored. What is stored is its audit
trail (`GateChange`): a row each time a partition's verdict differs from the last one
recorded (a partition never held has none), with when and why. Verdicts are re-evaluated,
and a change recorded, whenever the gate is asked, after a run records a partition's alerts
(for the dataset and its downstreams), when a person resolves or splits an alert, and when
a person adds or ends a mute (`monitors.lifecycle.muting`: the gates of the alerts it
covers, `alerts_under_mute`). A mute that starts or ends later by the clock (one added to
start in the future, one running out) changes the verdict at that moment, and that change
is recorded at the next evaluation.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session, aliased

from monitors.datasets import find_dataset
from monitors.errors import Invalid, NotFound
from monitors.lifecycle.mutes import active_mutes, alert_fields, covering_mute, matches
from monitors.pipeline.lineage import Lineage, read_lineage
from monitors.settings import Settings
from store.locks import lock_dataset
from store.models import (
    AUTO_RESOLUTION,
    UNRESOLVED,
    Alert,
    AlertOccurrence,
    AlertStatus,
    Batch,
    Dataset,
    GateChange,
    GateVerdict,
    MuteRule,
    Severity,
    utcnow,
)

DEFAULT_HOLDS_ON = Severity.critical  # a dataset that says nothing: warnings pass


def holding_severities(holds_on: str | Severity) -> tuple[Severity, ...]:
    """The severities that hold a gate set to `holds_on`: it and every worse one (Severity
    lists them worst first). ValueError for a name that is not a severity."""
    order = list(Severity)
    return tuple(order[:order.index(Severity(holds_on)) + 1])


def holds_on_of(session: Session, dataset_id: int) -> Severity:
    """The dataset's gate severity, as the config set it (catalog.sync_datasets)."""
    stored = session.scalar(select(Dataset.gate_holds_on).where(Dataset.id == dataset_id))
    return Severity(stored or DEFAULT_HOLDS_ON)


@dataclass(frozen=True, slots=True)
class HoldingAlert:
    id: int
    dataset: str
    monitor: str
    column: str | None
    severity: str
    status: str
    message: str


@dataclass(frozen=True, slots=True)
class Gate:
    """A partition's verdict and, when held, the alerts that hold it (upstream first)."""

    dataset: str
    partition: dt.date
    verdict: GateVerdict
    holding: tuple[HoldingAlert, ...] = ()
    holds_on: Severity = DEFAULT_HOLDS_ON  # the least severe alert that holds it

    @property
    def safe(self) -> bool:
        return self.verdict is GateVerdict.safe

    def to_json(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "partition": self.partition.isoformat(),
                "verdict": str(self.verdict), "safe": self.safe, "holds_on": str(self.holds_on),
                "holding": [{"id": a.id, "dataset": a.dataset, "monitor": a.monitor,
                             "column": a.column, "severity": a.severity, "status": a.status,
                             "message": a.message} for a in self.holding]}


def gate_verdict(source: Session | Settings, dataset: str, partition: dt.date | str, *,
                 now: dt.datetime | None = None) -> Gate:
    """The gate of `dataset`'s `partition` (a date or "YYYY-MM-DD"), its change audited.

    `source`: the process's Settings (the store is opened, and the audit row committed,
    here) or a Session whose caller owns the transaction (flushed, not committed).
    NotFound for an unknown dataset or a partition the store knows nothing of (no batch,
    no alert); Invalid for a date that is not one."""
    day = _day(partition)
    now = utcnow() if now is None else now
    if isinstance(source, Settings):
        from store.engine import open_store

        engine, sessions = open_store(source.db_url)
        try:
            with sessions.begin() as session:
                return gate_verdict(session, dataset, day, now=now)
        finally:
            engine.dispose()
    found = find_dataset(source, dataset)
    if not _known_partition(source, found.id, day):
        raise NotFound(f"dataset {found.name!r} has no batch and no alert for partition {day}")
    gate = evaluate(source, found.id, day, now=now)
    _record_change(source, found.id, gate, now)
    return gate


def evaluate(session: Session, dataset_id: int, partition: dt.date, *, now: dt.datetime,
             lineage: Lineage | None = None,
             mutes: list[MuteRule] | None = None) -> Gate:
    """The verdict, read only: nothing recorded."""
    lineage = lineage or read_lineage(session)
    mutes = active_mutes(session, now) if mutes is None else mutes
    scope = {dataset_id, *lineage.ancestors(dataset_id)}
    holds_on = holds_on_of(session, dataset_id)
    # below critical, only the first partition an alert still stands on is held (above)
    earlier = aliased(AlertOccurrence)
    onset = ~exists().where(earlier.alert_id == Alert.id, earlier.partition < partition,
                            earlier.cleared_at.is_(None))
    # one occurrence per alert and partition: the join repeats no alert
    rows = session.execute(
        select(Alert)
        .join(AlertOccurrence, AlertOccurrence.alert_id == Alert.id)
        .where(Alert.dataset_id.in_(scope),
               or_(Alert.status.in_(UNRESOLVED), and_(Alert.status == AlertStatus.resolved,
                                                      Alert.resolution == AUTO_RESOLUTION)),
               Alert.severity.in_(holding_severities(holds_on)),
               or_(Alert.severity == Severity.critical, onset),
               AlertOccurrence.partition == partition,
               AlertOccurrence.cleared_at.is_(None))).scalars().all()
    holding = [a for a in rows if _mute_of(session, a, lineage, mutes, now) is None
               and not _root_passed(session, a, partition)]
    # the most upstream first: that is where a person starts
    holding.sort(key=lambda a: (lineage.depth(a.dataset_id), a.id))
    return Gate(dataset=lineage.names[dataset_id], partition=partition,
                verdict=GateVerdict.held if holding else GateVerdict.safe, holds_on=holds_on,
                holding=tuple(HoldingAlert(a.id, lineage.names[a.dataset_id], a.monitor,
                                           a.column, a.severity, a.status, a.message)
                              for a in holding))


def refresh_gates(session: Session, dataset_id: int, partition: dt.date, *,
                  now: dt.datetime) -> list[tuple[int, dt.date]]:
    """Re-evaluate the gates an alert change on `dataset_id`'s `partition` can move: that
    partition of the dataset and of everything built from it; record the changes. The
    gates evaluated, as (dataset id, partition)."""
    lineage = read_lineage(session)
    mutes = active_mutes(session, now)
    evaluated = []
    for affected in sorted({dataset_id, *lineage.descendants(dataset_id)}):
        if _known_partition(session, affected, partition):
            gate = evaluate(session, affected, partition, now=now, lineage=lineage, mutes=mutes)
            _record_change(session, affected, gate, now)
            evaluated.append((affected, partition))
    return evaluated


def refresh_gates_of(session: Session, alerts: Iterable[Alert], *,
                     now: dt.datetime) -> list[tuple[int, dt.date]]:
    """`refresh_gates` for every partition these alerts fired on (a person acted on them);
    the gates evaluated, each once."""
    ids = {a.id: a.dataset_id for a in alerts}
    if not ids:
        return []
    session.flush()
    pairs = session.execute(select(Alert.dataset_id, AlertOccurrence.partition).distinct()
                            .join(AlertOccurrence, AlertOccurrence.alert_id == Alert.id)
                            .where(Alert.id.in_(ids))).all()
    evaluated: dict[tuple[int, dt.date], None] = {}
    for dataset_id, partition in sorted(pairs):
        if (dataset_id, partition) in evaluated:
            continue  # already evaluated as a downstream of an earlier one
        evaluated.update(dict.fromkeys(refresh_gates(session, dataset_id, partition, now=now)))
    return list(evaluated)


def alerts_under_mute(session: Session, matchers: dict[str, str]) -> list[Alert]:
    """The unresolved alerts whose gates a mute with these matchers moves when it starts or
    ends: those it covers and those caused by one it covers (muting an incident's root
    mutes the incident, `_mute_of`)."""
    names = dict(session.execute(select(Dataset.id, Dataset.name)).all())
    unresolved = session.scalars(select(Alert).where(Alert.status.in_(UNRESOLVED))).all()
    covered = {a.id for a in unresolved
               if matches(matchers, alert_fields(a, names[a.dataset_id]))}
    return [a for a in unresolved if a.id in covered or a.caused_by in covered]


def list_gate_changes(session: Session, dataset: str,
                      partition: dt.date | None = None) -> list[dict[str, Any]]:
    """The audit trail of a dataset's gates, oldest first."""
    found = find_dataset(session, dataset)
    query = select(GateChange).where(GateChange.dataset_id == found.id)
    if partition is not None:
        query = query.where(GateChange.partition == partition)
    return [{"dataset": found.name, "partition": c.partition.isoformat(), "verdict": c.verdict,
             "at": c.at.isoformat(), "why": c.why, "alert_ids": list(c.alert_ids)}
            for c in session.scalars(query.order_by(GateChange.id)).all()]


def _record_change(session: Session, dataset_id: int, gate: Gate, now: dt.datetime) -> None:
    if _last_verdict(session, dataset_id, gate.partition)[0] == gate.verdict:
        return
    # decided again under the dataset's lock: of two evaluations at once, one records it
    lock_dataset(session, dataset_id)
    last, held_by = _last_verdict(session, dataset_id, gate.partition)
    if last == gate.verdict:
        return
    if gate.safe:
        why = "released: " + "; ".join(_release_reason(session, i, gate, now)
                                       for i in held_by)
    else:
        why = "held by " + "; ".join(f"#{a.id} {a.dataset} {a.monitor}"
                                     + (f" on {a.column}" if a.column else "")
                                     + f" ({a.status}): {a.message}" for a in gate.holding)
    session.add(GateChange(dataset_id=dataset_id, partition=gate.partition, verdict=gate.verdict,
                           at=now, why=why, alert_ids=[a.id for a in gate.holding]))
    session.flush()


def _last_verdict(session: Session, dataset_id: int,
                  partition: dt.date) -> tuple[GateVerdict, list[int]]:
    last = session.scalars(select(GateChange).where(
        GateChange.dataset_id == dataset_id, GateChange.partition == partition)
        .order_by(GateChange.id.desc()).limit(1)).first()
    if last is None:
        return GateVerdict.safe, []  # a partition nothing ever held
    return GateVerdict(last.verdict), list(last.alert_ids)


def _release_reason(session: Session, alert_id: int, gate: Gate, now: dt.datetime) -> str:
    """What became of an alert that held the gate."""
    partition = gate.partition
    alert = session.get(Alert, alert_id)
    if alert is None:
        return f"#{alert_id} deleted"
    cleared = session.scalar(select(AlertOccurrence.cleared_at).where(
        AlertOccurrence.alert_id == alert_id, AlertOccurrence.partition == partition))
    if cleared is not None:
        return f"#{alert_id} passed on {partition} when evaluated again"
    if alert.status == AlertStatus.resolved and _root_passed(session, alert, partition):
        return f"#{alert_id} resolved with its root #{alert.caused_by}, which passed on {partition}"
    if alert.status == AlertStatus.resolved:
        return f"#{alert_id} resolved ({alert.resolution})"
    if alert.severity not in holding_severities(gate.holds_on):
        return f"#{alert_id} is {alert.severity} now (the gate holds on {gate.holds_on})"
    lineage = read_lineage(session)
    mute = _mute_of(session, alert, lineage, active_mutes(session, now), now)
    if mute is not None:
        return f"#{alert_id} muted by mute {mute.id} ({mute.reason})"
    return f"#{alert_id} no longer holds it"


def _root_passed(session: Session, alert: Alert, partition: dt.date) -> bool:
    """A knock-on the system resolved with its incident, whose root passed on `partition`
    (a corrected rerun upstream): it no longer holds the partition."""
    if alert.status != AlertStatus.resolved or alert.caused_by is None:
        return False
    return session.scalar(select(AlertOccurrence.cleared_at).where(
        AlertOccurrence.alert_id == alert.caused_by,
        AlertOccurrence.partition == partition)) is not None


def _mute_of(session: Session, alert: Alert, lineage: Lineage, mutes: list[MuteRule],
             now: dt.datetime) -> MuteRule | None:
    """The active mute covering the alert, or the root of its incident (muting an
    incident's root mutes the incident)."""
    mute = covering_mute(alert_fields(alert, lineage.names[alert.dataset_id]), mutes, now)
    if mute is None and alert.caused_by is not None:
        root = session.get(Alert, alert.caused_by)
        if root is not None:
            mute = covering_mute(alert_fields(root, lineage.names[root.dataset_id]), mutes, now)
    return mute


def _known_partition(session: Session, dataset_id: int, partition: dt.date) -> bool:
    batch = session.scalar(select(Batch.id).where(Batch.dataset_id == dataset_id,
                                                  Batch.partition == partition).limit(1))
    if batch is not None:
        return True
    # a missing batch is known through its alert
    return session.scalar(select(AlertOccurrence.id)
                          .join(Alert, Alert.id == AlertOccurrence.alert_id)
                          .where(Alert.dataset_id == dataset_id,
                                 AlertOccurrence.partition == partition).limit(1)) is not None


def _day(partition: dt.date | str) -> dt.date:
    if isinstance(partition, dt.datetime):
        raise Invalid(f"partition {partition.isoformat()}: give a date, not a time")
    if isinstance(partition, dt.date):
        return partition
    try:
        return dt.date.fromisoformat(str(partition))
    except ValueError:
        raise Invalid(f"partition {partition!r} is not a date (YYYY-MM-DD)") from None
