"""The mute form both triage pages open in a dialog: matchers, reason, end time, a preview
of what the mute covers, and the save. Keys carry the page's prefix (`alerts.mute.reason`)."""
from __future__ import annotations

import datetime as dt

import streamlit as st

from dashboard import services
from dashboard.text import md

# the grid's row height in pixels (header and each row)
ROW_PX = 35


def mute_form(prefix: str, prefill: dict[str, str], *, by: str,
              caption: str) -> tuple[int, dt.datetime] | None:
    """Render the form; once saved, return the mute's id and end, else None. A refused
    mute (no end time, too long, no matcher, ...) shows the reason and stores nothing."""
    st.caption(caption)
    fields = st.columns(len(prefill))
    matchers = {key: fields[i].text_input(key, value=value, key=f"{prefix}.mute.{key}")
                for i, (key, value) in enumerate(prefill.items())}
    reason = st.text_input("Reason", key=f"{prefix}.mute.reason",
                           placeholder="why these alerts may stay quiet")
    ends = st.columns(2)
    end_date = ends[0].date_input("Ends on (UTC)", value=None, key=f"{prefix}.mute.end_date",
                                  min_value=dt.date.today(), format="YYYY-MM-DD")
    end_time = ends[1].time_input("at", value=dt.time(9, 0), key=f"{prefix}.mute.end_time")
    try:
        covered = services.mute_preview(matchers)
    except ValueError as exc:
        st.error(md(exc))
    else:
        st.markdown(f"**Preview:** this mute would cover {len(covered)} unresolved alert(s)")
        if len(covered):
            # as tall as its rows (a fixed height drew empty ones), scrolling past six
            st.dataframe(covered, hide_index=True, key=f"{prefix}.mute.preview",
                         height=ROW_PX * (min(len(covered), 6) + 1) + 3)
    if not st.button("Mute", key=f"{prefix}.mute.save", type="primary"):
        return None
    ends_at = dt.datetime.combine(end_date, end_time, dt.UTC) if end_date is not None else None
    try:
        return services.add_mute(matchers, reason=reason, by=by, ends_at=ends_at), ends_at
    except ValueError as exc:
        st.error(f"Not muted: {md(exc)}")
        return None

