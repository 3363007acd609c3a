"""The demo stamps nothing in the viewer's future. Before, its last partition was always
yesterday, run at 18:00 UTC today, so until 18:00 the dashboard said "last alert seen" at a
time still to come."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from monitors.demo import RUN_AFTER_HOURS, default_end, land_demo
from store.models import Alert, Batch, Run


def test_the_last_partition_is_the_newest_whose_run_time_is_past():
    today = dt.date(2026, 12, 3)
    morning = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    evening = dt.datetime(2026, 12, 3, 19, 0, tzinfo=dt.UTC)
    assert default_end(morning) == today - dt.timedelta(days=2)
    assert default_end(evening) == today - dt.timedelta(days=1)
    for now in (morning, evening):
        run_at = (dt.datetime.combine(default_end(now) + dt.timedelta(days=1), dt.time(),
                                      dt.UTC) + dt.timedelta(hours=RUN_AFTER_HOURS))
        assert run_at <= now


def test_a_demo_landed_now_has_no_time_in_the_future(settings, sessions):
    land_demo(sessions, settings, days=3, seed=7)
    now = dt.datetime.now(dt.UTC)
    with sessions() as session:
        newest = {
            "batch arrival": session.scalar(select(func.max(Batch.arrived_at))),
            "run finish": session.scalar(select(func.max(Run.finished_at))),
            "alert last seen": session.scalar(select(func.max(Alert.last_seen_at))),
        }
    for what, at in newest.items():
        assert at is None or at <= now, f"{what} {at} is after now {now}"
    assert newest["batch arrival"] is not None
