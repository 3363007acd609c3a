"""Cron schedules as crontab means them, for the worker and for config validation."""
from __future__ import annotations

import datetime as dt

from apscheduler.triggers.cron import CronTrigger

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_days(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, names allowed) as APScheduler day names:
    APScheduler 3 counts 0 = Monday, so "1" handed over as is would mean Tuesday."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.lower().split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            lo, _, hi = span.partition("-")
            first = _DAY_NAMES.index(lo[:3]) if lo[:3] in _DAY_NAMES else int(lo)
            last = first if not hi else (_DAY_NAMES.index(hi[:3]) if hi[:3] in _DAY_NAMES else int(hi))
            if step and not hi:
                last = 6
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and int(step or 1) > 0):
            raise ValueError(f"day of week {item!r} is out of range 0-7")
        days.update(day % 7 for day in range(first, last + 1, int(step or 1)))
    return ",".join(_DAY_NAMES[day] for day in sorted(days))


def cron_trigger(expression: str) -> CronTrigger:
    """A standard five-field crontab line (minute hour day month day-of-week), in UTC."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields, expected 5 (minute hour day month day-of-week)")
    minute, hour, day, month, day_of_week = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_cron_days(day_of_week), timezone=dt.UTC)


def last_fire_time(trigger: CronTrigger, now: dt.datetime) -> dt.datetime | None:
    """The latest time at or before `now` the cron fired, found in a window that doubles
    (an hour, two, ...) so a minutely and a yearly cron both cost a few dozen steps."""
    window = dt.timedelta(hours=1)
    while window <= dt.timedelta(days=800):
        fire = trigger.get_next_fire_time(None, now - window)
        if fire is not None and fire <= now:
            while (following := trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))) \
                    is not None and following <= now:
                fire = following
            return fire
        window *= 2
    return None
