"""Mutes (silences): who may keep which alerts quiet, why, and until when.

A mute holds matchers on the alert's labels: `dataset`, `column`, `monitor`, `detector`,
`severity`. Each matcher value is a **glob** (shell-style, case-sensitive, `fnmatchcase`):
`income*`, `score_?`, `[ab]_rate`; a value without `*`, `?` or `[` is an exact match. Every
given matcher must match (AND). A table-level alert has no column: it matches a column
matcher as the empty string, so `*` covers it and `income*` does not.

A mute's state is derived, never stored (Alertmanager's silences): `pending` before
`starts_at`, `active` until `ends_at`, `expired` after. Expiring early moves `ends_at` to
now. Reason, author and end are required, and no mute lasts longer than `MAX_MUTE`, so a
forgotten mute cannot hide a dataset for good.

A mute is only ever changed by expiring it, under a lock (`store.locks`): of two people
expiring the same mute at once, the second is told who already did, instead of
overwriting the first one's end and name.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from monitors.errors import Invalid, NotFound, Refused
from store import queries
from store.locks import lock_for_write
from store.models import UNRESOLVED, Alert, AlertEvent, Dataset, MuteRule, Severity

MATCHER_KEYS = ("dataset", "column", "monitor", "detector", "severity")
MAX_MUTE = dt.timedelta(days=30)
_GLOB_CHARACTERS = frozenset("*?[")


class MuteState(StrEnum):
    pending = "pending"
    active = "active"
    expired = "expired"


def mute_state(mute: MuteRule, now: dt.datetime) -> MuteState:
    if now >= mute.ends_at:
        return MuteState.expired
    if now < mute.starts_at:
        return MuteState.pending
    return MuteState.active


def _is_pattern(value: str) -> bool:
    return any(c in _GLOB_CHARACTERS for c in value)


def matches(matchers: Mapping[str, str], fields: Mapping[str, Any]) -> bool:
    """Whether an alert's labels (`fields`: dataset name, column, monitor, detector,
    severity) satisfy every matcher."""
    return all(fnmatch.fnmatchcase(fields.get(key) or "", pattern)
               for key, pattern in matchers.items())


def covering_mute(fields: Mapping[str, Any], mutes: Iterable[MuteRule],
                  now: dt.datetime) -> MuteRule | None:
    """The first mute active at `now` that covers the alert, or None."""
    for mute in mutes:
        if mute_state(mute, now) is MuteState.active and matches(mute.matchers, fields):
            return mute
    return None


def is_muted(fields: Mapping[str, Any], mutes: Iterable[MuteRule], now: dt.datetime) -> bool:
    return covering_mute(fields, mutes, now) is not None


def mute_covers(session: Session, mutes: Iterable[MuteRule]) -> tuple[queries.MuteCover, ...]:
    """The mutes as the alert query matches them in SQL (`store.queries.MuteCover`), in
    the order given. An exact matcher is its value; `*` constrains nothing; any other glob
    becomes the label values in the store it matches, by `matches`' rule (a missing column
    is ""). A label value first stored after this read is not covered by a glob until the
    next read: the alert shows as loud for that one listing, never hidden by mistake."""
    values: dict[str, list[str | None]] = {}  # read once per label, and only for globs
    covers = []
    for mute in mutes:
        labels = []
        for key, pattern in sorted(mute.matchers.items()):
            if pattern == "*":
                continue
            if not _is_pattern(pattern):
                labels.append((key, (pattern,)))
                continue
            if key not in values:
                values[key] = queries.list_label_values(session, key)
            labels.append((key, tuple(v for v in values[key]
                                      if fnmatch.fnmatchcase(v or "", pattern))))
        covers.append(queries.MuteCover(mute.id, tuple(labels)))
    return tuple(covers)


def active_mutes(session: Session, now: dt.datetime) -> list[MuteRule]:
    _require_aware(now, "now")
    return list(session.scalars(select(MuteRule).where(
        MuteRule.starts_at <= now, MuteRule.ends_at > now).order_by(MuteRule.id)).all())


def clean_matchers(session: Session, matchers: Mapping[str, str | None]) -> dict[str, str]:
    """The matchers without blanks, checked: known keys, at least one matcher, a dataset
    and a severity that exist (a typo would otherwise mute nothing, silently)."""
    unknown = sorted(set(matchers) - set(MATCHER_KEYS))
    if unknown:
        raise Invalid(f"unknown matcher {', '.join(unknown)}: a mute matches on "
                      f"{', '.join(MATCHER_KEYS)}")
    cleaned = {k: str(v).strip() for k, v in matchers.items() if v is not None and str(v).strip()}
    if not cleaned:
        raise Invalid(f"a mute needs at least one matcher ({', '.join(MATCHER_KEYS)}); "
                      "to mute everything of a dataset, give --dataset")
    if "dataset" in cleaned:
        names = list(session.scalars(select(Dataset.name).order_by(Dataset.name)).all())
        if not any(fnmatch.fnmatchcase(n, cleaned["dataset"]) for n in names):
            what = "pattern" if _is_pattern(cleaned["dataset"]) else "dataset"
            raise Invalid(f"unknown dataset: {what} {cleaned['dataset']!r} matches no dataset "
                          f"(known: {', '.join(names) or 'none yet'})")
    if "severity" in cleaned:
        severities = [s.value for s in Severity]
        if not any(fnmatch.fnmatchcase(s, cleaned["severity"]) for s in severities):
            raise Invalid(f"severity {cleaned['severity']!r} matches none of "
                          f"{', '.join(severities)}")
    return cleaned


def add_mute(session: Session, *, matchers: Mapping[str, str | None], reason: str | None,
             by: str | None, ends_at: dt.datetime | None, now: dt.datetime,
             starts_at: dt.datetime | None = None) -> MuteRule:
    """Store a new mute after checking it; a refused mute stores nothing."""
    if not (by or "").strip():
        raise Refused("a mute needs an author (by)")
    if not (reason or "").strip():
        raise Invalid("a mute needs a reason: say why these alerts may stay quiet")
    if ends_at is None:
        raise Invalid(f"a mute needs an end time (at most {_days(MAX_MUTE)} after its start)")
    _require_aware(now, "now")
    _require_aware(ends_at, "the end time")
    starts_at = now if starts_at is None else starts_at
    _require_aware(starts_at, "the start time")
    if ends_at <= starts_at:
        raise Invalid(f"the end time {ends_at.isoformat()} is not after the start "
                      f"{starts_at.isoformat()}")
    if ends_at <= now:
        raise Invalid(f"the end time {ends_at.isoformat()} is already past")
    if ends_at - starts_at > MAX_MUTE:
        raise Invalid(f"a mute lasts at most {_days(MAX_MUTE)}; this one would last "
                      f"{ends_at - starts_at} (from {starts_at.isoformat()} to "
                      f"{ends_at.isoformat()})")
    mute = MuteRule(matchers=clean_matchers(session, matchers), reason=reason.strip(),
                    created_by=by.strip(), created_at=now, starts_at=starts_at, ends_at=ends_at)
    session.add(mute)
    session.flush()
    # the alerts it covers now say so on their timelines: a person reading one alert sees
    # why it went quiet, without opening the mutes list
    window = f"until {ends_at:%Y-%m-%d %H:%M} UTC" + (
        f", from {starts_at:%Y-%m-%d %H:%M} UTC" if starts_at > now else "")
    for covered in preview(session, mute.matchers, now):
        session.add(AlertEvent(alert_id=covered["id"], kind="muted", by=mute.created_by, at=now,
                               note=f"mute {mute.id} {window}: {mute.reason}"))
    return mute


def expire(session: Session, mute_id: int, by: str, now: dt.datetime) -> MuteRule:
    """End a mute now. Its alerts turn loud again at once, since `muted` is derived."""
    if not (by or "").strip():
        raise Refused("expiring a mute needs a name (by)")
    _require_aware(now, "now")
    lock_for_write(session)
    mute = session.scalars(select(MuteRule).where(MuteRule.id == mute_id).with_for_update()
                           .execution_options(populate_existing=True)).one_or_none()
    if mute is None:
        raise NotFound(f"no mute with id {mute_id}")
    if mute_state(mute, now) is MuteState.expired:
        raise Refused(f"mute {mute_id} already expired at {mute.ends_at.isoformat()}"
                      + (f" (expired by {mute.expired_by})" if mute.expired_by else ""))
    # a pending mute expired early keeps start <= end, so it never reads as pending again
    mute.starts_at = min(mute.starts_at, now)
    mute.ends_at = now
    mute.expired_by = by.strip()
    session.flush()
    return mute


def mute_summary(mute: MuteRule, now: dt.datetime) -> dict[str, Any]:
    """The CLI's and dashboard's view of a mute, with its derived state."""
    return {"id": mute.id, "state": mute_state(mute, now).value, "matchers": dict(mute.matchers),
            "reason": mute.reason, "created_by": mute.created_by,
            "created_at": mute.created_at.isoformat(), "starts_at": mute.starts_at.isoformat(),
            "ends_at": mute.ends_at.isoformat(), "expired_by": mute.expired_by}


def list_mutes(session: Session, now: dt.datetime, *, state: str | None = None) -> list[dict[str, Any]]:
    """Every mute, newest first, optionally only those in one state."""
    if state is not None and state not in MuteState.__members__:
        raise Invalid(f"unknown mute state {state!r} (one of {', '.join(MuteState)})")
    documents = [mute_summary(m, now) for m in
                 session.scalars(select(MuteRule).order_by(MuteRule.id.desc())).all()]
    return [d for d in documents if state is None or d["state"] == state]


def preview(session: Session, matchers: Mapping[str, str | None], now: dt.datetime) -> list[dict[str, Any]]:
    """The open and acknowledged alerts a mute with these matchers would cover: what a
    person checks before muting."""
    cleaned = clean_matchers(session, matchers)
    rows = session.execute(
        select(Alert, Dataset.name).join(Dataset, Dataset.id == Alert.dataset_id)
        .where(Alert.status.in_(UNRESOLVED))
        .order_by(Alert.last_seen_at.desc(), Alert.id.desc())).all()
    covered = []
    for alert, dataset in rows:
        fields = alert_fields(alert, dataset)
        if matches(cleaned, fields):
            covered.append({"id": alert.id, **fields, "status": alert.status,
                            "partition": alert.partition.isoformat() if alert.partition else None,
                            "message": alert.message})
    return covered


def alert_fields(alert: Alert, dataset_name: str) -> dict[str, Any]:
    """An alert's labels, the names mutes match on."""
    return {"dataset": dataset_name, "column": alert.column, "monitor": alert.monitor,
            "detector": alert.detector, "severity": alert.severity}


def _require_aware(value: dt.datetime, what: str) -> None:
    if value.tzinfo is None:
        raise Invalid(f"{what} {value.isoformat()} has no time zone: give UTC times")


def _days(span: dt.timedelta) -> str:
    return f"{span.days} days"
