"""Alerts: filter, select, act in bulk. Deep links from the overview fill the filters
(`?status=open,acknowledged&dataset=...&monitor=...&severity=...&muted=1`)."""

import pandas as pd
import streamlit as st

from dashboard import paging, services
from dashboard.faults import shows_store_faults
from dashboard.identity import NAME_PARAM, actor, carry_name
from dashboard.mute_form import mute_form
from dashboard.text import md
from dashboard.times import fmt_when, when_column

DEFAULTS = {"alerts.status": list(services.UNRESOLVED_STATUSES), "alerts.severity": [],
            "alerts.dataset": [], "alerts.monitor": [], "alerts.show_muted": False,
            "alerts.only_muted": False,
            "alerts.seen_from": None, "alerts.seen_to": None}
PARAMS = {"status": "alerts.status", "severity": "alerts.severity",
          "dataset": "alerts.dataset", "monitor": "alerts.monitor"}
MATCHERS = ("dataset", "column", "monitor", "detector", "severity")
PREFILLED = ("dataset", "column", "monitor")
state = st.session_state


def _from_link() -> None:
    """A new deep link (or none, after sidebar navigation) sets the filters once; after
    that they are the person's."""
    params = {k: v for k, v in st.query_params.to_dict().items() if k != NAME_PARAM}
    signature = repr(sorted(params.items()))
    # "only muted" is drawn only while muted alerts are shown, so its key may come and go
    drawn = [k for k in DEFAULTS if k != "alerts.only_muted"]
    if state.get("alerts.link") == signature and all(k in state for k in drawn):
        return
    state["alerts.link"] = signature
    for key, default in DEFAULTS.items():
        state[key] = default
    for param, key in PARAMS.items():
        if params.get(param):
            state[key] = [v for v in params[param].split(",") if v]
    state["alerts.show_muted"] = params.get("muted") in ("1", "only")
    state["alerts.only_muted"] = params.get("muted") == "only"
    state["alerts.page"] = 1


def _marker() -> str:
    """The store's triage state this table was loaded at: a new tab loads the current one;
    after that the rows stay put until the person acts or asks for new alerts."""
    if "alerts.marker" not in state:
        state["alerts.marker"] = services.triage_marker()
    return state["alerts.marker"]


def _changed() -> None:
    """After an action: fresh rows, and the live banner counts from here."""
    state["alerts.marker"] = services.triage_marker()
    state["alerts.baseline"] = services.latest_alert_id()
    state.pop("alerts.selected", None)
    # the grid keeps its ticks in the browser whatever the server forgets: a table under a
    # new key is drawn without them, so the ticks agree with "Selected: 0"
    state["alerts.generation"] = state.get("alerts.generation", 0) + 1


def _close_mute() -> None:
    state["alerts.mute_open"] = False


st.title("Alerts")
who = actor()
_from_link()
choices = services.alert_filter_choices()

filters = st.columns([3, 2, 3, 3])
filters[0].multiselect("Status", services.STATUSES, key="alerts.status", placeholder="any")
filters[1].multiselect("Severity", services.SEVERITIES, key="alerts.severity", placeholder="any")
filters[2].multiselect("Dataset", sorted(set(choices["datasets"]) | set(state["alerts.dataset"])),
                       key="alerts.dataset", placeholder="any")
filters[3].multiselect("Monitor", sorted(set(choices["monitors"]) | set(state["alerts.monitor"])),
                       key="alerts.monitor", placeholder="any")
when = st.columns([3, 2, 3, 3], vertical_alignment="bottom")
when[0].date_input("Partition from", key="alerts.seen_from", format="YYYY-MM-DD")
when[1].date_input("Partition to", key="alerts.seen_to", format="YYYY-MM-DD")
when[2].toggle("Show muted alerts", key="alerts.show_muted",
               help="Alerts an active mute covers are hidden unless this is on.")
if state["alerts.show_muted"]:
    when[3].toggle("Only muted ones", key="alerts.only_muted")

query = dict(statuses=tuple(state["alerts.status"]), severities=tuple(state["alerts.severity"]),
             datasets=tuple(state["alerts.dataset"]), monitors=tuple(state["alerts.monitor"]),
             seen_from=state["alerts.seen_from"], seen_to=state["alerts.seen_to"],
             show_muted=state["alerts.show_muted"],
             only_muted=state["alerts.show_muted"] and state.get("alerts.only_muted", False))
page, changed = paging.current_page("alerts", query)
if changed:  # new filters: the old selection means nothing any more
    state.pop("alerts.selected", None)
frame, total = services.alerts_table(**query, page=page - 1, marker=_marker())
if "alerts.baseline" not in state:
    state["alerts.baseline"] = services.latest_alert_id()


@st.fragment(run_every=10)
@shows_store_faults
def new_alerts_banner() -> None:
    """Live: new alerts are announced here; the table below waits until asked, so the
    rows someone is selecting stay where they are."""
    count, newest = services.alerts_after(state["alerts.baseline"])
    if not count:
        return
    with st.container(border=True):
        st.warning(f"{count} new alert(s) since this table was loaded")
        st.dataframe(newest, hide_index=True, key="alerts.new")
        if st.button("Show them in the table", key="alerts.refresh"):
            _changed()
            st.rerun()


new_alerts_banner()

flash = state.pop("alerts.flash", None)
if flash:
    st.success(flash)
for refusal in state.pop("alerts.refused", []):
    st.error(f"Not changed: {md(refusal)}")

shown = frame.assign(muted=frame["muted"].map({True: "muted", False: ""}),
                     detail="alert?alert=" + frame["id"].astype(str) + carry_name(who),
                     caused_by=frame["caused_by"].map(
                         lambda c: f"caused by #{int(c)}" if pd.notna(c) else ""))
ids = frame["id"].astype(int).tolist()
st.caption(paging.showing(total, page, len(frame), "alert(s)", "last seen first"))
generation = state.get("alerts.generation", 0)
event = st.dataframe(
    shown, key="alerts.table" if not generation else f"alerts.table.{generation}",
    on_select="rerun", selection_mode="multi-row", hide_index=True,
    column_order=["id", "detail", "severity", "status",
                  *(["muted"] if state["alerts.show_muted"] else []), "dataset", "column",
                  "monitor", "partition", "message", "caused_by", "occurrences", "last_seen_at"],
    column_config={
        "detail": st.column_config.LinkColumn("detail", display_text="open ↗", width="small"),
        "last_seen_at": when_column("last seen"),
        "message": st.column_config.TextColumn(width="large"),
        "muted": st.column_config.TextColumn("mute", width="small"),
        # wide enough for "acknowledged" and "critical": the state must never be cut
        "status": st.column_config.TextColumn(width=110),
        "severity": st.column_config.TextColumn(width=80),
        "caused_by": st.column_config.TextColumn("incident", width="small"),
    })
rows = list(event.selection.rows) if event is not None else []
# positions are mapped to ids against the rows that were on screen when they were
# picked, and kept as ids: a refreshed page can never redirect an action
if rows != state.get("alerts.rows"):
    previous = state.get("alerts.ids", ids)
    state["alerts.selected"] = [previous[p] for p in rows if p < len(previous)]
    state["alerts.rows"] = rows
state["alerts.ids"] = ids
# the statuses on screen when a button was clicked: an action on one that changed since
# is refused rather than applied to a state nobody saw
seen = state.get("alerts.seen", {})
state["alerts.seen"] = dict(zip(ids, frame["status"]))
selected = state.get("alerts.selected", [])

paging.page_picker("alerts", total)

st.subheader(f"Selected: {len(selected)}")
if not selected:
    st.caption("Tick rows in the table's left column to act on them together; `open ↗` "
               "opens one alert with its chart and evidence.")
else:
    st.caption("Acting on alert(s) " + ", ".join(f"#{i}" for i in selected))
    for alert_id in selected[:3]:
        st.page_link("dashboard/views/alert.py", label=f"Open alert #{alert_id} →",
                     query_params={"alert": str(alert_id)})
if who.why_not:
    st.caption(who.why_not)
disabled = not (who.can_act and selected)
act = st.columns([2, 3, 3, 2, 2], vertical_alignment="bottom")
if act[0].button("Acknowledge", key="alerts.ack", disabled=disabled, type="primary"):
    done, refused = services.acknowledge_alerts(selected, by=who.name, seen=seen)
    _changed()
    state["alerts.flash"] = f"Acknowledged {len(done)} alert(s) as {md(who.name)}." if done else None
    state["alerts.refused"] = refused
    st.rerun()
resolution = act[1].selectbox("Resolution", services.RESOLUTIONS, key="alerts.resolution")
note = act[2].text_input("Note (optional)", key="alerts.note")
if act[3].button("Resolve", key="alerts.resolve", disabled=disabled):
    done, refused = services.resolve_alerts(selected, by=who.name, resolution=resolution,
                                            note=note, seen=seen)
    _changed()
    state["alerts.flash"] = f"Resolved {len(done)} alert(s) as {md(resolution)}." if done else None
    state["alerts.refused"] = refused
    st.rerun()
if act[4].button("Mute…", key="alerts.mute", disabled=disabled):
    state["alerts.mute_open"] = True
    state["alerts.mute_scope"] = frame[frame["id"].isin(selected)]


def _common(values: pd.Series) -> str:
    """The one value every selected alert shares, else blank (a blank matcher matches all)."""
    distinct = values.fillna("").unique()
    return str(distinct[0]) if len(distinct) == 1 else ""


@st.dialog("Mute alerts", width="large", on_dismiss=_close_mute)
def mute_dialog(scope: pd.DataFrame) -> None:
    # detector and severity follow from the monitor: prefilling them would only make the
    # mute lapse when someone changes a monitor's severity
    prefill = {key: _common(scope[key]) if key in PREFILLED else "" for key in MATCHERS}
    saved = mute_form("alerts", prefill, by=who.name,
                      caption="A mute keeps matching alerts quiet until its end; globs like "
                              "`income*` work. Blank matchers match everything, so check the preview.")
    if saved:
        mute_id, ends_at = saved
        _changed()
        state["alerts.mute_open"] = False
        state["alerts.flash"] = f"Mute {mute_id} stored until {fmt_when(ends_at)}."
        st.rerun()


if state.get("alerts.mute_open") and who.can_act:
    mute_dialog(state.get("alerts.mute_scope", frame.iloc[:0]))
