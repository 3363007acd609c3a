"""The alert lifecycle: what a run's verdicts do to alerts, and what people do to them.

Identity. An alert is identified by a fingerprint of (dataset, column, monitor) plus the
partition for point findings (an anomaly or a failed check is about one batch); conditions
that persist over partitions (breakouts, drift, schema, freshness) leave the partition out,
so one alert collects every partition they fire on.

A run hands `record_signals` one `Signal` per monitor and partition evaluated:

- a firing signal with no alert for its fingerprint opens one (event `opened`);
- one whose fingerprint has an open or acknowledged alert updates it (`updated`: last seen,
  value, one more occurrence), never adds a second alert;
- one whose alert was resolved reopens it (`reopened`) when its partition is at most
  `REOPEN_WINDOW` after the alert's last firing partition, and otherwise opens a new alert;
- one alert per change: a firing anomaly or breakout with no alert of its own to update
  folds into the unresolved alert of a change of the same metric (CHANGE_DETECTORS): an
  anomaly into an open breakout that began by its partition, or into an anomaly alert of
  the metric that fired within `REOPEN_WINDOW`; a breakout takes over the anomaly alert of
  its metric that fired since the new level began. The firing is one more occurrence of
  that alert (`updated`, which notifies nobody);
- a passing signal resolves the open alert of its fingerprint (resolution `auto`, by
  `system`) unless the alert fired on a later partition than the one that passed; so a
  rerun of an old partition whose corrected batch passes resolves the alerts it invalidates.

Occurrences count distinct partitions, not evaluations: each firing partition is one
`AlertOccurrence` row, with a digest of the finding. Re-evaluating a partition with the same
finding (a rerun of the same inputs and config, a retried run) changes nothing, whatever the
alert's status, so `record_signals` twice with the same input is a no-op.

The reopen window is measured between partitions, not wall-clock time: a backfill records
months of partitions within seconds, and it must reopen and open exactly as the live daily
runs did.

Muting is derived at read time (`muted` in `list_alerts` and `alert_page`): an alert is
muted while an active mute covers it, and loud again by itself when the mute ends. Alerts a
mute covers when they are opened or reopened also get a `muted` event and are reported in
`Recorded.muted`, which notification leaves out.

Concurrency. The worker and any number of dashboards change the same alerts. Every
function here that decides a change from an alert's state first locks what it reads
(`store.locks`: row locks on PostgreSQL, the writer lock on SQLite), so it decides on the
state as of its own write: a triage action and a run's verdict on one alert happen one
after the other, never over each other, and neither needs to retry. A person's action
carries the status they saw (`seen`); when someone else changed it since, `AlertChanged`
says who did what and when, and nothing changes. Comments and rerun notes always apply.

The caller owns the transaction: these functions flush, never commit.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from detectors.result import Finding
from monitors.datasets import find_dataset
from monitors.errors import Invalid, NotFound, Refused
from monitors.lifecycle.mutes import (
    active_mutes,
    alert_fields,
    covering_mute,
    mute_covers,
)
from monitors.pipeline.gates import refresh_gates_of
from store import queries
from store.locks import lock_for_write
from store.models import (
    AUTO_RESOLUTION,
    UNRESOLVED,
    Alert,
    AlertEvent,
    AlertOccurrence,
    AlertStatus,
    Dataset,
    MuteRule,
    Severity,
    utcnow,
)

REOPEN_WINDOW = dt.timedelta(days=3)
# the detectors whose findings are a change of a metric's level: a point anomaly that
# continues an open change of the same metric (a breakout, or anomalies days apart) folds
# into that alert, and a breakout found under open anomalies takes their alert over, so a
# change is one alert and one message however many days it fires
CHANGE_DETECTORS = ("anomalies", "breakouts")
HEALTHY = "ok"
HEALTH_LEVELS = (*(s.value for s in Severity), HEALTHY)  # worst first
RESOLUTIONS = ("fixed", "expected", "false_positive", "no_action_needed")
SYSTEM = "system"
# SQLite allows 999 bound parameters per statement in older builds
_CHUNK = 500


class EventKind(StrEnum):
    opened = "opened"
    updated = "updated"
    acknowledged = "acknowledged"
    resolved = "resolved"
    reopened = "reopened"
    muted = "muted"
    commented = "commented"
    rerun_requested = "rerun_requested"
    notify_failed = "notify_failed"   # a message owed to its endpoint (monitors.lifecycle.notify)
    grouped = "grouped"               # marked as caused by an incident's root (monitors.lifecycle.incidents)
    split = "split"                   # taken out of its incident by hand


# the events that set an alert's status, the last one says who set the current one
STATUS_EVENTS = (EventKind.opened, EventKind.reopened, EventKind.acknowledged,
                 EventKind.resolved)


class AlertChanged(Refused):
    """The alert's status is no longer the one the person acting on it saw."""


@dataclass(frozen=True, slots=True)
class Signal:
    """One monitor's verdict about one partition."""

    dataset_id: int
    monitor: str          # unique within a dataset
    detector: str
    column: str | None
    severity: str         # critical | warning | info
    partition: dt.date
    finding: Finding | None   # None: the monitor ran and passed for this partition
    # True: the partition is part of the fingerprint (point anomalies, checks); False: one
    # alert per (dataset, column, monitor) (breakouts, drift, schema, freshness)
    point: bool = True
    owner: str | None = None
    evidence: dict = field(default_factory=dict)
    # what the verdict was judged on (monitors.judge.provenance.judged_on), kept on the alert
    judged_on: dict | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.dataset_id, self.column, self.monitor,
                           self.partition if self.point else None)


@dataclass
class Recorded:
    """The alert ids a `record_signals` call touched. When one call covers several
    partitions (a catch-up, a backfill) an id may appear in more than one list."""

    new: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    reopened: list[int] = field(default_factory=list)
    muted: list[int] = field(default_factory=list)

    def _note(self, what: str, alert_id: int) -> None:
        ids = getattr(self, what)
        if alert_id not in ids:
            ids.append(alert_id)

    def merge(self, other: "Recorded") -> None:
        """Add another call's ids (a run records partition by partition)."""
        for what in ("new", "updated", "resolved", "reopened", "muted"):
            for alert_id in getattr(other, what):
                self._note(what, alert_id)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.resolved or self.reopened)


def fingerprint(dataset_id: int, column: str | None, monitor: str,
                partition: dt.date | None) -> str:
    """The alert identity: sha256 hex of the labels (64 characters)."""
    key = json.dumps([dataset_id, column, monitor,
                      partition.isoformat() if partition is not None else None])
    return hashlib.sha256(key.encode()).hexdigest()


def record_signals(session: Session, signals: Iterable[Signal], *, now: dt.datetime,
                   config_version: str | None, run_id: int | None = None) -> Recorded:
    """Turn a run's verdicts into alert changes (the rules are in the module's docstring)."""
    _require_aware(now, "now")
    recorded = Recorded()
    verdicts = _one_verdict_per_partition(signals)
    if not verdicts:
        return recorded
    lock_for_write(session)
    latest = _latest_alerts(session, {fp for fp, _ in verdicts})
    occurrences = _occurrences(session, [a.id for a in latest.values()])
    earlier = _earlier_occurrences(session, latest)
    names = _dataset_names(session, {s.dataset_id for s in verdicts.values()})
    mutes = active_mutes(session, now)
    context = _Context(session, now, config_version, run_id, recorded, occurrences, earlier,
                       names, mutes)
    # partition order, so a call covering many partitions replays them as live runs would
    for (fp, partition), signal in sorted(verdicts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if signal.finding is None:
            context.passed(latest.get(fp), signal)
        else:
            latest[fp] = context.fired(latest.get(fp), signal, fp)
    session.flush()
    return recorded


@dataclass
class _Context:
    session: Session
    now: dt.datetime
    config_version: str | None
    run_id: int | None
    recorded: Recorded
    occurrences: dict[tuple[int, dt.date], AlertOccurrence]
    # firings held by an identity's older alerts (one that resolved, then fired again past
    # the reopen window, has two): a rerun of their partitions must find them there
    earlier: dict[tuple[str, dt.date], AlertOccurrence]
    names: dict[int, str]
    mutes: list[MuteRule]

    def fired(self, alert: Alert | None, signal: Signal, fp: str) -> Alert:
        digest = _finding_digest(signal)
        held = self.earlier.get((fp, signal.partition))
        if held is not None and held.digest == digest and held.cleared_at is None:
            return alert  # an older alert of this identity recorded this finding already
        if alert is None or (alert.status == AlertStatus.resolved
                             and signal.partition - alert.partition > REOPEN_WINDOW):
            change = self._change_in_progress(signal)
            if change is not None:
                return self._fold(change, signal, fp, digest)
        if alert is None:
            return self._open(signal, fp, digest)
        seen = self.occurrences.get((alert.id, signal.partition))
        if seen is not None and seen.digest == digest and seen.cleared_at is None:
            return alert  # the same partition re-evaluated with the same finding
        if alert.status == AlertStatus.resolved:
            if signal.partition - alert.partition > REOPEN_WINDOW:
                return self._open(signal, fp, digest)
            alert.status, alert.resolution, alert.resolved_at = AlertStatus.open, None, None
            self._event(alert, EventKind.reopened, SYSTEM,
                        f"fired again on partition {signal.partition} within "
                        f"{REOPEN_WINDOW.days} days of its last firing: {signal.finding.detail}")
            self.recorded._note("reopened", alert.id)
            self._apply(alert, signal, digest, seen)
            self._mute_if_covered(alert)
            return alert
        note = (f"finding changed on partition {signal.partition}" if seen is not None
                else f"fired again on partition {signal.partition}")
        self._apply(alert, signal, digest, seen)
        self._event(alert, EventKind.updated, SYSTEM,
                    f"{note} (occurrence {alert.occurrences}): {signal.finding.detail}")
        self.recorded._note("updated", alert.id)
        return alert

    def passed(self, alert: Alert | None, signal: Signal) -> None:
        if alert is None:
            return
        seen = self.occurrences.get((alert.id, signal.partition))
        if seen is not None and seen.cleared_at is None:
            seen.cleared_at = self.now
        # a pass on a partition older than the last firing does not undo the newer firing
        if alert.status != AlertStatus.resolved and signal.partition >= alert.partition:
            alert.status, alert.resolution, alert.resolved_at = (
                AlertStatus.resolved, AUTO_RESOLUTION, self.now)
            why = f"monitor {signal.monitor} passed on partition {signal.partition}"
            self._event(alert, EventKind.resolved, SYSTEM, why)
            self.recorded._note("resolved", alert.id)
            # an incident is resolved whole, as when a person resolves its root
            for knock_on in _caused_unresolved(self.session, alert):
                knock_on.status, knock_on.resolution, knock_on.resolved_at = (
                    AlertStatus.resolved, AUTO_RESOLUTION, self.now)
                self._event(knock_on, EventKind.resolved, SYSTEM, _with_root(alert, why))
                self.recorded._note("resolved", knock_on.id)

    def _change_in_progress(self, signal: Signal) -> Alert | None:
        """The unresolved alert of a change this firing continues (see CHANGE_DETECTORS):
        for a point anomaly, an open breakout of the same metric that began at or before
        its partition, or an anomaly alert of the metric that fired within the reopen
        window; for a breakout, an anomaly alert of the metric that fired since the new
        level began."""
        metric = signal.evidence.get("metric")
        if signal.detector not in CHANGE_DETECTORS or not metric:
            return None
        column = (Alert.column.is_(None) if signal.column is None
                  else Alert.column == signal.column)
        candidates = self.session.scalars(
            select(Alert).where(Alert.dataset_id == signal.dataset_id, column,
                                Alert.detector.in_(CHANGE_DETECTORS),
                                Alert.status.in_([s.value for s in UNRESOLVED]))
            .order_by(Alert.id.desc()).with_for_update()
            .execution_options(populate_existing=True)).all()
        for candidate in candidates:
            if (candidate.evidence or {}).get("metric") != metric:
                continue
            began = (candidate.evidence or {}).get("breakout_at")
            if signal.point and candidate.detector == "breakouts":
                found = began is not None and dt.date.fromisoformat(began) <= signal.partition
            elif signal.point:
                found = abs(signal.partition - candidate.partition) <= REOPEN_WINDOW
            else:
                start = signal.evidence.get("breakout_at")
                found = (candidate.detector == "anomalies" and start is not None
                         and candidate.partition >= dt.date.fromisoformat(start))
            if found:
                if not any(key[0] == candidate.id for key in self.occurrences):
                    self.occurrences.update(_occurrences(self.session, [candidate.id]))
                return candidate
        return None

    def _fold(self, change: Alert, signal: Signal, fp: str, digest: str) -> Alert:
        """One alert per change: the firing becomes an occurrence of the change's alert
        (an update, which notifies nobody), never an alert of its own."""
        seen = self.occurrences.get((change.id, signal.partition))
        if not signal.point:
            # a breakout found under open anomalies: their alert becomes the change's, with
            # the breakout's identity and words, and keeps the worse severity
            worse = min(change.severity, signal.severity, key=list(Severity).index)
            change.fingerprint, change.monitor = fp, signal.monitor
            self._apply(change, signal, digest, seen)
            change.severity = worse
            self._event(change, EventKind.updated, SYSTEM,
                        f"the anomalies since {signal.evidence.get('breakout_at')} are one "
                        f"change, a new level: {signal.finding.detail}")
            self.recorded._note("updated", change.id)
            return change
        if seen is not None:
            return change  # this partition is part of the change already
        if change.detector == "anomalies" and signal.monitor == change.monitor:
            self._apply(change, signal, digest, None)
        else:  # a breakout's alert keeps its words; the anomaly is one more day of it
            seen = AlertOccurrence(alert_id=change.id, partition=signal.partition, digest=digest,
                                   value=_float(signal.finding.value),
                                   message=signal.finding.detail, run_id=self.run_id,
                                   seen_at=self.now)
            self.session.add(seen)
            self.occurrences[(change.id, signal.partition)] = seen
            change.occurrences += 1
            change.last_seen_at = self.now
        self._event(change, EventKind.updated, SYSTEM,
                    f"{signal.monitor} on partition {signal.partition} continues this change "
                    f"(occurrence {change.occurrences}): {signal.finding.detail}")
        self.recorded._note("updated", change.id)
        return change

    def _open(self, signal: Signal, fp: str, digest: str) -> Alert:
        alert = Alert(fingerprint=fp, dataset_id=signal.dataset_id, column=signal.column,
                      monitor=signal.monitor, detector=signal.detector, severity=signal.severity,
                      status=AlertStatus.open, partition=signal.partition, message="",
                      occurrences=0, first_seen_at=self.now, last_seen_at=self.now)
        self.session.add(alert)
        self.session.flush()  # the id, for the occurrence and the events
        self._apply(alert, signal, digest, None)
        self._event(alert, EventKind.opened, SYSTEM,
                    f"partition {signal.partition}: {signal.finding.detail}")
        self.recorded._note("new", alert.id)
        self._mute_if_covered(alert)
        return alert

    def _apply(self, alert: Alert, signal: Signal, digest: str,
               seen: AlertOccurrence | None) -> None:
        finding = signal.finding
        if seen is None:
            seen = AlertOccurrence(alert_id=alert.id, partition=signal.partition)
            self.session.add(seen)
            self.occurrences[(alert.id, signal.partition)] = seen
            alert.occurrences += 1
        seen.digest, seen.value, seen.message = digest, _float(finding.value), finding.detail
        seen.run_id, seen.seen_at, seen.cleared_at = self.run_id, self.now, None
        # the alert shows its latest partition; a backfilled older firing only adds a count
        if signal.partition >= alert.partition:
            alert.partition = signal.partition
            alert.value, alert.expected = _float(finding.value), _float(finding.expected)
            alert.lower, alert.upper = _float(finding.lower), _float(finding.upper)
            alert.message = finding.detail
            alert.evidence = _evidence(signal)
            alert.judged_on = signal.judged_on
            alert.severity, alert.detector = signal.severity, signal.detector
            alert.owner = signal.owner
        alert.last_seen_at = self.now
        alert.config_version = self.config_version

    def _mute_if_covered(self, alert: Alert) -> None:
        mute = covering_mute(alert_fields(alert, self.names[alert.dataset_id]), self.mutes, self.now)
        if mute is not None:
            self._event(alert, EventKind.muted, SYSTEM,
                        f"covered by mute {mute.id} of {mute.created_by} until "
                        f"{mute.ends_at.isoformat()}: {mute.reason}")
            self.recorded._note("muted", alert.id)

    def _event(self, alert: Alert, kind: EventKind, by: str, note: str | None) -> None:
        self.session.add(AlertEvent(alert_id=alert.id, kind=kind, by=by, at=self.now, note=note))


def _one_verdict_per_partition(signals: Iterable[Signal]) -> dict[tuple[str, dt.date], Signal]:
    """One signal per (fingerprint, partition): a firing beats a pass, and of several
    firings the worst (highest score) wins, ties broken by the detail so the choice does
    not depend on the order the run produced them in."""
    chosen: dict[tuple[str, dt.date], Signal] = {}
    for signal in signals:
        if signal.severity not in Severity.__members__:
            raise Invalid(f"monitor {signal.monitor!r}: unknown severity {signal.severity!r} "
                          f"(one of {', '.join(Severity)})")
        key = (signal.fingerprint, signal.partition)
        current = chosen.get(key)
        if current is None or _rank(signal) > _rank(current):
            chosen[key] = signal
    return chosen


def _rank(signal: Signal) -> tuple:
    if signal.finding is None:
        return (0, 0.0, "")
    score = signal.finding.score
    return (1, score if score == score else math.inf, signal.finding.detail)


def _finding_digest(signal: Signal) -> str:
    f = signal.finding
    key = json.dumps([signal.severity, signal.detector, signal.owner, str(f.at),
                      *(repr(v) for v in (f.value, f.expected, f.lower, f.upper, f.score)),
                      f.detail])
    return hashlib.sha256(key.encode()).hexdigest()


def _evidence(signal: Signal) -> dict[str, Any]:
    finding = signal.finding
    extra = {"at": str(finding.at), "score": finding.score, "before": finding.before,
             "after": finding.after, "count": finding.count, "fraction": finding.fraction,
             "examples": list(finding.examples) or None}
    evidence = {**signal.evidence, **{k: v for k, v in extra.items() if v is not None}}
    # rows, timestamps and numpy scalars must survive a JSON column on every dialect, and
    # NaN is not JSON: it becomes null
    return json.loads(json.dumps(evidence, default=str), parse_constant=lambda _: None)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _latest_alerts(session: Session, fingerprints: set[str]) -> dict[str, Alert]:
    latest: dict[str, Alert] = {}
    ordered = sorted(fingerprints)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start:start + _CHUNK]
        # locked and re-read even when this session holds them already: a triage action
        # committed since must be what the verdicts apply to
        for alert in session.scalars(select(Alert).where(Alert.fingerprint.in_(chunk))
                                     .order_by(Alert.id).with_for_update()
                                     .execution_options(populate_existing=True)).all():
            latest[alert.fingerprint] = alert  # ascending ids: the last one wins
    return latest


def _occurrences(session: Session, alert_ids: Sequence[int]) -> dict[tuple[int, dt.date], AlertOccurrence]:
    found: dict[tuple[int, dt.date], AlertOccurrence] = {}
    ids = sorted(alert_ids)
    for start in range(0, len(ids), _CHUNK):
        for occurrence in session.scalars(select(AlertOccurrence).where(
                AlertOccurrence.alert_id.in_(ids[start:start + _CHUNK]))).all():
            found[(occurrence.alert_id, occurrence.partition)] = occurrence
    return found


def _earlier_occurrences(session: Session, latest: dict[str, Alert]
                         ) -> dict[tuple[str, dt.date], AlertOccurrence]:
    """The occurrences of each identity's alerts before its latest, by (fingerprint,
    partition)."""
    found: dict[tuple[str, dt.date], AlertOccurrence] = {}
    ordered = sorted(latest)
    for start in range(0, len(ordered), _CHUNK):
        rows = session.execute(
            select(Alert.fingerprint, AlertOccurrence)
            .join(AlertOccurrence, AlertOccurrence.alert_id == Alert.id)
            .where(Alert.fingerprint.in_(ordered[start:start + _CHUNK]),
                   Alert.id.not_in([latest[fp].id for fp in ordered[start:start + _CHUNK]])))
        for fp, occurrence in rows.all():
            found[(fp, occurrence.partition)] = occurrence
    return found


def _dataset_names(session: Session, ids: set[int]) -> dict[int, str]:
    names = dict(session.execute(select(Dataset.id, Dataset.name).where(Dataset.id.in_(ids))).all())
    missing = ids - set(names)
    if missing:
        raise NotFound(f"signals name unknown dataset ids: {sorted(missing)}")
    return names


# ---- what people do -------------------------------------------------------------------

def acknowledge(session: Session, alert_id: int, *, by: str, note: str | None = None,
                now: dt.datetime | None = None, seen: str | None = None) -> Alert:
    """Someone is on it: open -> acknowledged. `seen`: the status the person saw (see
    `AlertChanged`)."""
    by, now = _who(by), _when(now)
    alert = _get_for_change(session, alert_id, seen)
    if alert.status == AlertStatus.resolved:
        raise Refused(f"alert {alert_id} is {_last_change(session, alert)}: there is "
                      "nothing to acknowledge; comment on it instead")
    if alert.status == AlertStatus.acknowledged:
        raise Refused(f"alert {alert_id} is already {_last_change(session, alert)}")
    alert.status = AlertStatus.acknowledged
    _add_event(session, alert, EventKind.acknowledged, by, now, note)
    for caused in _caused_unresolved(session, alert):  # an incident is acknowledged whole
        if caused.status == AlertStatus.open:
            caused.status = AlertStatus.acknowledged
            _add_event(session, caused, EventKind.acknowledged, by, now,
                       _with_root(alert, note))
    return alert


def resolve(session: Session, alert_id: int, *, by: str, resolution: str,
            note: str | None = None, now: dt.datetime | None = None,
            seen: str | None = None) -> Alert:
    """Close an alert with a resolution: fixed, expected, false_positive or
    no_action_needed ("false positive" and "no-action-needed" are accepted too). `seen`:
    the status the person saw (see `AlertChanged`)."""
    by, now = _who(by), _when(now)
    normal = (resolution or "").strip().lower().replace(" ", "_").replace("-", "_")
    if normal not in RESOLUTIONS:
        raise Invalid(f"unknown resolution {resolution!r}: one of {', '.join(RESOLUTIONS)}")
    alert = _get_for_change(session, alert_id, seen)
    if alert.status == AlertStatus.resolved:
        raise Refused(f"alert {alert_id} is already {_last_change(session, alert)}")
    alert.status, alert.resolution, alert.resolved_at = AlertStatus.resolved, normal, now
    _add_event(session, alert, EventKind.resolved, by, now,
               f"{normal}: {note}" if note else normal)
    caused = _caused_unresolved(session, alert)
    for knock_on in caused:  # an incident is resolved whole
        knock_on.status, knock_on.resolution, knock_on.resolved_at = (
            AlertStatus.resolved, normal, now)
        _add_event(session, knock_on, EventKind.resolved, by, now,
                   _with_root(alert, f"{normal}: {note}" if note else normal))
    refresh_gates_of(session, [alert, *caused], now=now)
    return alert


def reopen(session: Session, alert_id: int, *, by: str, note: str | None = None,
           now: dt.datetime | None = None, seen: str | None = None) -> Alert:
    """A resolved alert was closed too soon (the fix did not hold, the resolution was
    wrong): resolved -> open, with who and why on its timeline. `seen` as for `resolve`."""
    by, now = _who(by), _when(now)
    alert = _get_for_change(session, alert_id, seen)
    if alert.status != AlertStatus.resolved:
        raise Refused(f"alert {alert_id} is {_last_change(session, alert)}: only a resolved "
                      "alert can be reopened")
    alert.status, alert.resolution, alert.resolved_at = AlertStatus.open, None, None
    _add_event(session, alert, EventKind.reopened, by, now, note)
    refresh_gates_of(session, [alert], now=now)  # a critical alert reopened holds again
    return alert


def _caused_unresolved(session: Session, root: Alert) -> list[Alert]:
    """The unresolved alerts `root` caused (monitors.lifecycle.incidents), locked for the change."""
    return list(session.scalars(select(Alert).where(
        Alert.caused_by == root.id, Alert.status.in_(UNRESOLVED)).order_by(Alert.id)
        .with_for_update().execution_options(populate_existing=True)).all())


def _with_root(root: Alert, note: str | None) -> str:
    return f"with its incident's root #{root.id}" + (f": {note}" if note else "")


def comment(session: Session, alert_id: int, *, by: str, note: str,
            now: dt.datetime | None = None) -> Alert:
    """A note on the timeline; it changes no state, so it applies whatever happened since
    the person loaded the alert."""
    alert, by, now = _get(session, alert_id), _who(by), _when(now)
    if not (note or "").strip():
        raise Invalid("a comment needs a note")
    _add_event(session, alert, EventKind.commented, by, now, note.strip())
    return alert


def note_rerun_requested(session: Session, alert_id: int, *, by: str, run_id: int,
                         now: dt.datetime | None = None) -> Alert:
    """Put the rerun someone requested from this alert on its timeline."""
    alert, by, now = _get(session, alert_id), _who(by), _when(now)
    _add_event(session, alert, EventKind.rerun_requested, by, now, f"run {run_id}")
    return alert


def _get(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    return alert


def _get_for_change(session: Session, alert_id: int, seen: str | None) -> Alert:
    """The alert as of now, held until the caller commits; AlertChanged when its status
    is not the one the person saw."""
    lock_for_write(session)
    alert = session.scalars(select(Alert).where(Alert.id == alert_id).with_for_update()
                            .execution_options(populate_existing=True)).one_or_none()
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    if seen is not None and alert.status != seen:
        raise AlertChanged(f"alert {alert_id} was {_last_change(session, alert)} since you "
                           f"loaded it (you saw it {seen}); reload it and decide again")
    return alert


def _last_change(session: Session, alert: Alert) -> str:
    """Who set the alert's current status, and when: "resolved (fixed) by bo at ...",
    "reopened by system at ..."."""
    event = session.scalars(select(AlertEvent).where(
        AlertEvent.alert_id == alert.id, AlertEvent.kind.in_(STATUS_EVENTS))
        .order_by(AlertEvent.id.desc()).limit(1)).first()
    if event is None:
        return str(alert.status)
    what = f"{event.kind} ({alert.resolution})" if alert.resolution else event.kind
    return f"{what} by {event.by} at {event.at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def _who(by: str | None) -> str:
    if not (by or "").strip():
        raise Refused("every action on an alert needs a name (by)")
    return by.strip()


def _when(now: dt.datetime | None) -> dt.datetime:
    now = utcnow() if now is None else now
    _require_aware(now, "now")
    return now


def _add_event(session: Session, alert: Alert, kind: EventKind, by: str, at: dt.datetime,
               note: str | None) -> None:
    session.add(AlertEvent(alert_id=alert.id, kind=kind, by=by, at=at, note=note))
    session.flush()


def _require_aware(value: dt.datetime, what: str) -> None:
    if value.tzinfo is None:
        raise Invalid(f"{what} {value.isoformat()} has no time zone: give UTC times")


# ---- what people see ------------------------------------------------------------------

def list_alerts(session: Session, *, status: str | Sequence[str] | None = None,
                dataset: str | Sequence[str] | None = None,
                severity: str | Sequence[str] | None = None,
                monitor: str | Sequence[str] | None = None,
                since: dt.date | None = None, until: dt.date | None = None,
                include_muted: bool = True, limit: int | None = None, offset: int = 0,
                now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Alerts as `alerts list` shows them, last seen first (ties: newest id first), paged
    by `limit` and `offset`. The filters are those of `alert_page`; `include_muted=False`
    leaves out the alerts an active mute covers."""
    query = _alert_query(session, status, dataset, severity, monitor, since, until,
                         None if include_muted else False, _when(now))
    return [_document(alert, name, mute_id)
            for alert, name, mute_id in queries.list_alert_rows(session, query, limit=limit,
                                                                offset=offset)]


@dataclass(frozen=True, slots=True)
class AlertPage:
    alerts: list[dict[str, Any]]  # as `list_alerts` gives them
    total: int                    # how many match, over all the pages


def alert_page(session: Session, *, status: str | Sequence[str] | None = None,
               dataset: str | Sequence[str] | None = None,
               severity: str | Sequence[str] | None = None,
               monitor: str | Sequence[str] | None = None,
               since: dt.date | None = None, until: dt.date | None = None,
               muted: bool | None = None, limit: int | None = None, offset: int = 0,
               now: dt.datetime | None = None) -> AlertPage:
    """One page of alerts and how many match in all: the one alert query, which the CLI
    (`list_alerts`) and the dashboard's table both call. Filtered, mute-matched and paged
    in SQL.

    Each filter takes one value or several (None: any). `since` and `until` bound the
    alert's partition (the latest it fired on), both days included; a datetime counts as
    its UTC date. `muted`: None lists all, False only alerts no active mute covers at
    `now`, True only the covered ones; each alert's `muted` and `mute_id` say which.
    """
    query = _alert_query(session, status, dataset, severity, monitor, since, until, muted,
                         _when(now))
    rows = queries.list_alert_rows(session, query, limit=limit, offset=offset)
    return AlertPage([_document(alert, name, mute_id) for alert, name, mute_id in rows],
                     queries.count_alert_rows(session, query))


def _alert_query(session: Session, status, dataset, severity, monitor, since, until,
                 muted: bool | None, now: dt.datetime) -> queries.AlertQuery:
    datasets = tuple(_many(dataset)) if dataset is not None else ()
    for name in datasets:
        find_dataset(session, name)  # an unknown name is refused, not an empty list
    return queries.AlertQuery(
        statuses=tuple(_choices(status, [s.value for s in AlertStatus], "status")),
        severities=tuple(_choices(severity, [s.value for s in Severity], "severity")),
        datasets=datasets, monitors=tuple(_many(monitor)) if monitor is not None else (),
        partition_from=_partition_bound(since, "since"),
        partition_to=_partition_bound(until, "until"),
        mutes=mute_covers(session, active_mutes(session, now)), muted=muted)


def count_unresolved(session: Session, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Open and acknowledged alerts per dataset, severity, status and whether an active mute
    covers them at `now` and whether they are caused by another alert (part of its incident),
    with the latest `last_seen_at`: what health and the counts on every page are made of,
    matched against mutes in SQL as `alert_page` does."""
    query = queries.AlertQuery(statuses=tuple(s.value for s in UNRESOLVED),
                               mutes=mute_covers(session, active_mutes(session, _when(now))))
    return [{"dataset": name, "severity": severity, "status": status, "muted": bool(muted),
             "caused": bool(caused), "alerts": alerts, "last_seen_at": last_seen_at}
            for name, severity, status, muted, caused, alerts, last_seen_at
            in queries.count_alerts_by_state(session, query)]


def dataset_health(session: Session, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per dataset, worst first: its health (the worst severity among its loud
    unresolved alerts, or "ok") and its counts of open, acknowledged and muted alerts.
    An alert caused by another (part of its incident, monitors.lifecycle.incidents) is counted once,
    with its incident, not again as an open one: it is in `caused`; it still sets its
    dataset's health (the data is broken either way)."""
    counts = count_unresolved(session, now)
    rows = []
    for dataset in queries.list_datasets(session):
        mine = [c for c in counts if c["dataset"] == dataset.name]
        loud = [c for c in mine if not c["muted"]]
        by_severity = {s.value: sum(c["alerts"] for c in loud if c["severity"] == s) for s in Severity}
        rows.append({
            "dataset": dataset.name,
            "upstream": list(dataset.upstream or []),
            "health": next((s for s, n in by_severity.items() if n), HEALTHY),
            **{status.value: sum(c["alerts"] for c in loud if c["status"] == status
                                 and not c["caused"])
               for status in UNRESOLVED},
            "caused": sum(c["alerts"] for c in loud if c["caused"]),
            "muted": sum(c["alerts"] for c in mine if c["muted"]),
            **by_severity,
            "last_seen_at": max((c["last_seen_at"] for c in mine), default=None)})
    rank = {level: i for i, level in enumerate(HEALTH_LEVELS)}
    return sorted(rows, key=lambda row: rank[row["health"]])


def get_alert(session: Session, alert_id: int, now: dt.datetime | None = None) -> dict[str, Any]:
    """One alert with its timeline (`events`, oldest first) and the partitions it fired on
    (`firings`)."""
    now = _when(now)
    alert = _get(session, alert_id)
    name = session.get(Dataset, alert.dataset_id).name
    document = alert_summary(alert, name, active_mutes(session, now), now)
    events = session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id)
                             .order_by(AlertEvent.at, AlertEvent.id)).all()
    document["events"] = [{"kind": e.kind, "by": e.by, "at": e.at.isoformat(), "note": e.note}
                          for e in events]
    firings = session.scalars(select(AlertOccurrence).where(AlertOccurrence.alert_id == alert_id)
                              .order_by(AlertOccurrence.partition)).all()
    document["firings"] = [{"partition": o.partition.isoformat(), "value": o.value,
                            "message": o.message, "run_id": o.run_id,
                            "seen_at": o.seen_at.isoformat(),
                            "cleared_at": o.cleared_at.isoformat() if o.cleared_at else None}
                           for o in firings]
    return document


def alert_summary(alert: Alert, dataset_name: str, mutes: Iterable[MuteRule],
                  now: dt.datetime) -> dict[str, Any]:
    """DESIGN.md's alert fields, and a few more for triage; `muted` as of `now`."""
    mute = covering_mute(alert_fields(alert, dataset_name), mutes, now)
    return _document(alert, dataset_name, mute.id if mute is not None else None)


def _document(alert: Alert, dataset_name: str, mute_id: int | None) -> dict[str, Any]:
    return {
        "id": alert.id, "dataset": dataset_name, "column": alert.column, "monitor": alert.monitor,
        "detector": alert.detector, "severity": alert.severity, "status": alert.status,
        "muted": mute_id is not None, "mute_id": mute_id,
        "partition": alert.partition.isoformat() if alert.partition else None,
        "value": alert.value, "expected": alert.expected, "lower": alert.lower,
        "upper": alert.upper, "message": alert.message, "occurrences": alert.occurrences,
        "first_seen_at": alert.first_seen_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "resolution": alert.resolution,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "owner": alert.owner, "evidence": alert.evidence, "fingerprint": alert.fingerprint,
        "config_version": alert.config_version, "judged_on": alert.judged_on,
        "caused_by": alert.caused_by,
    }


def _many(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _choices(value: str | Sequence[str] | None, allowed: list[str], what: str) -> list[str]:
    if value is None:
        return []
    chosen = _many(value)
    unknown = [v for v in chosen if v not in allowed]
    if unknown:
        raise Invalid(f"unknown {what} {', '.join(map(repr, unknown))}: one of {', '.join(allowed)}")
    return chosen


def _partition_bound(value: dt.date | None, what: str) -> dt.date | None:
    if isinstance(value, dt.datetime):
        _require_aware(value, what)
        return value.astimezone(dt.UTC).date()
    return value
