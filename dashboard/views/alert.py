"""One alert, and why: the metric's history with what the monitor expected, the evidence,
the timeline, and every action a click away. Deep link: `/alert?alert=ID`."""

import pandas as pd
import streamlit as st

from dashboard import charts, metric_charts, services
from dashboard.faults import shows_store_faults
from dashboard.identity import actor
from dashboard.mute_form import mute_form
from dashboard.text import md
from dashboard.times import fmt_when, when_column

SEVERITY_BADGES = {"critical": "red", "warning": "orange", "info": "blue"}
STATUS_BADGES = {"open": "red", "acknowledged": "orange", "resolved": "green"}
state = st.session_state


def _changed(message: str | None, refused: list[str] = ()) -> None:
    state["alert.flash"] = message
    state["alert.refused"] = list(refused)
    state["alert.clear_note"] = not refused
    # after one's own action the buttons follow the alert as it is now, not as first seen
    state.pop("alert.seen", None)
    st.rerun()


st.title("Alert")
who = actor()

raw = st.query_params.get("alert")
alert_id = int(raw) if raw and raw.isdigit() else None
if alert_id is None:
    st.info("Open an alert from the Alerts page, or give its number.")
    picked = st.number_input("Alert number", min_value=1, step=1, value=None, key="alert.pick")
    if picked:
        st.query_params["alert"] = str(int(picked))
        st.rerun()
    st.page_link("dashboard/views/alerts.py", label="Alerts →")
    st.stop()

document = services.alert_document(alert_id)  # as the store holds it now
if document is None:
    st.error(f"There is no alert #{alert_id}.")
    st.page_link("dashboard/views/alerts.py", label="Alerts →")
    st.stop()

where = document["dataset"] + (f".{document['column']}" if document["column"] else "")
st.subheader(f"#{alert_id} · {md(where)} · {md(document['monitor'])}")
badges = [f":{SEVERITY_BADGES.get(document['severity'], 'gray')}-badge[{document['severity']}]",
          f":{STATUS_BADGES.get(document['status'], 'gray')}-badge[{document['status']}"
          + (f": {md(document['resolution'])}" if document["resolution"] else "") + "]"]
if document["muted"]:
    badges.append(f":gray-badge[muted by mute {document['mute_id']}]")
st.markdown(" ".join(badges) + f"  partition **{md(document['partition'])}** · fired on "
            f"{document['occurrences']} partition(s) · detector {md(document['detector'])}")
st.markdown(f"> {md(document['message'])}")
if document.get("caused_by") is not None:
    # a knock-on of another alert's incident: it was not notified, and follows the root
    st.page_link("dashboard/views/alert.py", label=f"caused by #{document['caused_by']} →",
                 query_params={"alert": str(document["caused_by"])})
judged = services.judged_on_line(document)
if judged:  # what the verdict was made of: window, config version, detector, inputs
    inputs = ", ".join(f"{md(p)} {md(f[:12])}"
                       for p, f in (document["judged_on"].get("inputs") or {}).items())
    st.caption(f"**{md(judged[0].upper() + judged[1:])}**" + (f" · batch {inputs}" if inputs else ""))

flash = state.pop("alert.flash", None)
if flash:
    st.success(flash)
for refusal in state.pop("alert.refused", []):
    st.error(f"Not changed: {md(refusal)}")
# what was on screen when a button was clicked: its rerun may already read a newer alert
seen_status, seen_partition = state.get("alert.seen", {}).get(
    alert_id, (document["status"], document["partition"]))
state["alert.seen"] = {alert_id: (document["status"], document["partition"])}

# ---- actions ------------------------------------------------------------------------------
if who.why_not:
    st.caption(who.why_not)
# buttons follow what the person saw, so a click on an alert someone changed meanwhile
# reaches the lifecycle, which refuses it and says who changed it
resolved = seen_status == "resolved"
# one note box for every action: what someone typed before clicking Resolve goes on the
# timeline with the resolution instead of being lost in a separate comment form
if state.pop("alert.clear_note", False):
    state["alert.note"] = ""
note = st.text_input("Note", key="alert.note", placeholder="what you found (optional)",
                     help="Kept on the alert's timeline with Acknowledge or Resolve, "
                          "or on its own with Comment.").strip() or None
acts = st.columns([2, 3, 2, 2, 2], vertical_alignment="bottom")
if acts[0].button("Acknowledge", key="alert.ack", type="primary",
                  disabled=not who.can_act or seen_status != "open"):
    done, refused = services.acknowledge_alerts([alert_id], by=who.name, note=note,
                                                seen={alert_id: seen_status})
    _changed(f"Acknowledged by {md(who.name)}." if done else None, refused)
resolution = acts[1].selectbox("Resolution", services.RESOLUTIONS, key="alert.resolution")
if resolved:
    if acts[2].button("Reopen", key="alert.reopen", disabled=not who.can_act,
                      help="The fix did not hold or the resolution was wrong"):
        done, refused = services.reopen_alert(alert_id, by=who.name, note=note,
                                              seen=seen_status)
        _changed(f"Reopened by {md(who.name)}." if done else None, refused)
elif acts[2].button("Resolve", key="alert.resolve", disabled=not who.can_act):
    done, refused = services.resolve_alerts([alert_id], by=who.name, resolution=resolution,
                                            note=note, seen={alert_id: seen_status})
    _changed(f"Resolved as {md(resolution)} by {md(who.name)}." if done else None, refused)
if acts[3].button("Mute similar…", key="alert.mute_similar", disabled=not who.can_act):
    state["alert.mute_open"] = alert_id
if acts[4].button("Rerun partition", key="alert.rerun", disabled=not who.can_act,
                  help=f"Queue a run of {md(document['dataset'])} for {md(document['partition'])}"):
    try:
        run_id = services.rerun_alert_partition(alert_id, by=who.name, partition=seen_partition)
    except ValueError as exc:
        st.error(f"No rerun: {md(exc)}")
    else:
        state.setdefault("alert.runs", {})[alert_id] = run_id
        _changed(f"Run {run_id} queued for {md(document['dataset'])} {md(seen_partition)}.")

if st.button("Comment", key="alert.comment", disabled=not who.can_act):
    try:
        services.comment_alert(alert_id, by=who.name, note=note)
    except ValueError as exc:
        st.error(md(exc))
    else:
        _changed("Comment added.")

# a change of a metric can be accepted as the new normal (why: the Note); an acceptance can
# be withdrawn
history = services.alert_history(alert_id)
accepted = any(m["alert_id"] == alert_id for m in (history or {}).get("markers", []))
if accepted:
    if st.button("Withdraw acceptance", key="alert.unaccept", disabled=not who.can_act,
                 help="The monitors judge this metric on its whole history again"):
        done, refused = services.unaccept_alert(alert_id, by=who.name)
        _changed(f"Acceptance withdrawn by {md(who.name)}; the alert is open again." if done else None,
                 refused)
elif document["detector"] in services.ACCEPTABLE and not resolved:
    if st.button("Accept as new normal", key="alert.accept", disabled=not who.can_act,
                 help="Say why in the Note. From the change on, its monitors judge only the "
                      "history after it; the alert is resolved as expected"):
        if not note:
            st.error("Say in the Note why this is the new normal: it is kept with the marker.")
        else:
            done, refused = services.accept_alert(alert_id, by=who.name, note=note,
                                                  seen=seen_status)
            _changed(f"Accepted as the new normal by {md(who.name)}." if done else None, refused)


def show_run(run: dict) -> None:
    run_id = run["id"]
    text = (f"Rerun {run_id}: **{run['status']}** "
            f"({run['progress_done']}/{run['progress_total']} partitions)")
    if run["status"] == "succeeded":
        st.success(text)
    elif run["status"] in ("failed", "cancelled"):
        st.error(text + (f": {md(run['error'])}" if run["error"] else ""))
    else:
        st.info(text + (" — waiting for a worker (`python -m monitors worker`)"
                        if run["status"] == "queued" else ""))


@st.fragment(run_every=2)
@shows_store_faults
def rerun_status(run_id: int) -> None:
    """Live while the run is queued or running; its end reruns the page, which then shows
    the outcome once and stops polling."""
    run = services.run_state(run_id)
    if run is not None and run["finished_at"] is not None:
        st.rerun()
    if run is not None:
        show_run(run)


run_id = state.get("alert.runs", {}).get(alert_id)
if run_id is not None:
    finished = services.run_state(run_id)
    if finished is not None and finished["finished_at"] is not None:
        show_run(finished)
    else:
        rerun_status(run_id)

# ---- why: the history, the band, the evidence ---------------------------------------------
kind = history["kind"] if history is not None else None
subject = document["column"] or document["dataset"]
if kind == "drift":
    drift, measure, limit = services.drift_frame(document["dataset"], document["column"],
                                                 history["profile"])
    st.plotly_chart(metric_charts.drift_figure(
        drift, measure=measure, limit=limit, title=f"{subject} · {measure} against its reference"),
        key="alert.chart")
    st.caption(f"the {measure} of each partition against the window before it; the dashed "
               "line is the monitor's limit")
elif kind == "categories":
    st.plotly_chart(metric_charts.class_mix_figure(
        services.class_mix_frame(document["dataset"], document["column"]),
        title=f"{subject}: each category's share of the batch"), key="alert.chart")
elif kind == "arrivals":
    st.plotly_chart(metric_charts.freshness_figure(
        services.freshness_frame(document["dataset"]),
        deadline_hours=float(history["deadline_hours"]),
        title=f"{document['dataset']}: arrival delay per partition"), key="alert.chart")
elif kind == "contract":
    st.caption("The delivery broke the dataset's contract: what it broke is in the evidence "
               "below; the batch was quarantined, nothing of it was stored.")
elif history is not None and not history["series"].dropna().empty:
    thresholds = dict(history["thresholds"])
    if (not thresholds and history["band"] is None and document["detector"] != "breakouts"
            and history["kind"] == "metric"):
        # no band to draw: the bounds the finding itself reports are the next best thing, when
        # the series drawn is the one they bound (row counts shown for context are not)
        thresholds = {k: document[k] for k in ("lower", "upper") if document[k] is not None}
    figure = charts.metric_history(
        history["series"], title=history["label"], band=history["band"],
        anomalies=history["anomalies"], others=history["others"],
        breakouts=history["breakouts"], thresholds=thresholds,
        focus=pd.Timestamp(document["partition"]) if document["partition"] else None,
        markers=history.get("markers", []))
    st.plotly_chart(figure, key="alert.chart")
    if history["note"]:
        st.caption(md(history["note"]))
    if kind == "metric" and st.toggle("Show the seasonal decomposition", key="alert.decompose"):
        parts = services.alert_decomposition(alert_id)
        if parts is None:
            st.caption("Too little history to decompose.")
        else:
            st.plotly_chart(charts.decomposition(parts), key="alert.decomposition")
else:
    st.caption("No stored metric history to chart for this alert.")

evidence = dict(document.get("evidence") or {})
examples = services.masked_examples(document)
evidence.pop("examples", None)
left, right = st.columns(2)
with left:
    st.markdown("**Evidence**")
    if evidence:
        st.dataframe(pd.DataFrame({"field": list(evidence),
                                   "value": [f"{v:.6g}" if isinstance(v, float) else str(v)
                                             for v in evidence.values()]}),
                     hide_index=True, key="alert.evidence")
    if not examples.empty:
        masked = [c for c in document["sensitive"] if c in examples.columns]
        st.caption("Rows that failed the check" + (
            f" (sensitive columns masked: {md(', '.join(masked))})" if masked else ""))
        st.dataframe(examples, hide_index=True, key="alert.examples")
    st.markdown("**Fired on**")
    st.dataframe(pd.DataFrame(document["firings"]), hide_index=True, key="alert.firings")
with right:
    st.markdown("**Timeline**")
    events = pd.DataFrame(document["events"], columns=["at", "kind", "by", "note"])
    events["at"] = pd.to_datetime(events["at"], utc=True, format="ISO8601")
    st.dataframe(events.iloc[::-1], hide_index=True, key="alert.events",
                 column_config={"at": when_column("at", seconds=True),
                                "note": st.column_config.TextColumn(width="large")})


@st.dialog("Mute similar alerts", width="large",
           on_dismiss=lambda: state.update({"alert.mute_open": None}))
def mute_similar() -> None:
    saved = mute_form("alert", {key: document[key] or "" for key in ("dataset", "column", "monitor")},
                      by=who.name,
                      caption="Similar: the same monitor on the same dataset and column. Widen it "
                              "with a glob, `income*` or `level:*`, and check the preview.")
    if saved:
        mute_id, ends_at = saved
        state["alert.mute_open"] = None
        _changed(f"Mute {mute_id} stored until {fmt_when(ends_at)}.")


if state.get("alert.mute_open") == alert_id and who.can_act:
    mute_similar()
