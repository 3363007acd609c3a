"""A person adds or ends a mute: the mute itself (`monitors.lifecycle.mutes`), and at once
the gates it moves (`monitors.pipeline.gates`).

A mute over a critical alert lets the partitions that alert holds through their gates;
ending it closes them again. Re-evaluating those gates when the person acts puts the
change in the gates' audit trail at that moment, with the mute named as the reason, and
settles the partitions' waiting stages (`monitors.pipeline.stages.settle`): a released one
is queued for the worker's next poll, one that is held again says by which alert. The CLI
(`mutes add|expire`) and the dashboard both come through here.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy.orm import Session

from monitors.lifecycle import mutes
from monitors.pipeline import gates, stages
from store.models import MuteRule


def add(session: Session, *, matchers: Mapping[str, str | None], reason: str | None,
        by: str | None, ends_at: dt.datetime | None, now: dt.datetime,
        starts_at: dt.datetime | None = None) -> MuteRule:
    """`mutes.add_mute`, then the gates it moves; a refused mute changes nothing."""
    mute = mutes.add_mute(session, matchers=matchers, reason=reason, by=by, ends_at=ends_at,
                          now=now, starts_at=starts_at)
    _gates_moved(session, mute, now)
    return mute


def end(session: Session, mute_id: int, *, by: str, now: dt.datetime) -> MuteRule:
    """`mutes.expire` (the mute ends now), then the gates it moves."""
    mute = mutes.expire(session, mute_id, by, now)
    _gates_moved(session, mute, now)
    return mute


def _gates_moved(session: Session, mute: MuteRule, now: dt.datetime) -> None:
    alerts = gates.alerts_under_mute(session, dict(mute.matchers))
    for dataset_id, partition in gates.refresh_gates_of(session, alerts, now=now):
        stages.settle(session, dataset_id, partition, now=now)
