"""Times as the viewer reads them: in their browser's time zone, with the zone named.

The store keeps every moment in UTC; a person on call in Madrid should not do arithmetic to
know whether a batch arrived before breakfast. Partitions stay calendar days (a partition is
a UTC day, not a moment), and schedules stay cron in UTC, as the config writes them."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st

UTC = "UTC"


def viewer_zone() -> str:
    """The IANA name of the viewer's browser zone; UTC when the browser did not say (a
    script, AppTest) or said something this machine's zone database does not know."""
    name = st.context.timezone or UTC
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC
    return name


def when_column(label: str, *, seconds: bool = False):
    """A table column of UTC moments shown in the viewer's zone, the zone in its header."""
    zone = viewer_zone()
    return st.column_config.DatetimeColumn(
        f"{label} ({zone})", timezone=zone,
        format="YYYY-MM-DD HH:mm:ss" if seconds else "YYYY-MM-DD HH:mm")


def fmt_when(moment: dt.datetime) -> str:
    """One moment in a sentence: `2026-12-03 13:40 CET`."""
    local = moment.astimezone(ZoneInfo(viewer_zone()))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"
