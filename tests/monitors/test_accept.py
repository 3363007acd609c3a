"""A legitimate, permanent change is one alert and one message, and once someone accepts it
as the new normal the monitors of that metric judge against the history after it."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from monitors.alerts import list_alerts
from store.models import Alert
from tests.monitors import steps
from tests.monitors.test_notify import RecordingSender

BASELINE_DAYS = 56
STEP_DAYS = 20
STEP = steps.START + dt.timedelta(days=BASELINE_DAYS)


def day(n: int) -> dt.date:
    return steps.START + dt.timedelta(days=n)


def land_history(settings, sessions, days: int, step_at: int | None = BASELINE_DAYS) -> None:
    """The quiet weeks before the step, delivered on time and backfilled in one run."""
    steps.write_config(settings)
    for n in range(days):
        steps.deliver(settings.home, day(n), steps.rows_on(n, step_at))
    steps.run(sessions, settings, day(0), day(days - 1), trigger="backfill",
              now=steps.live_morning(day(days - 1)))


def live_days(settings, sessions, first: int, last: int, sender, step_at=BASELINE_DAYS) -> None:
    """Each day's delivery and its scheduled run, the morning after, notifying."""
    for n in range(first, last + 1):
        steps.deliver(settings.home, day(n), steps.rows_on(n, step_at))
        steps.run(sessions, settings, day(n), day(n), now=steps.live_morning(day(n)),
                  sender=sender, notify=True)


def alerts_since(sessions, partition: dt.date) -> list[dict]:
    with sessions() as session:
        return [a for a in list_alerts(session, now=steps.live_morning(day(200)))
                if dt.date.fromisoformat(a["partition"]) >= partition]


def test_a_permanent_step_is_one_change_one_message(settings, sessions):
    land_history(settings, sessions, BASELINE_DAYS)
    sender = RecordingSender()
    live_days(settings, sessions, BASELINE_DAYS, BASELINE_DAYS + STEP_DAYS - 1, sender)
    raised = alerts_since(sessions, STEP)
    print(f"\n+60% step over {STEP_DAYS} days: {len(raised)} alert(s), "
          f"{len(sender.posts)} notification(s): "
          + ", ".join(f"{a['monitor']}@{a['partition']}x{a['occurrences']}" for a in raised))
    assert len(raised) <= 2
    assert len(sender.posts) == 1
