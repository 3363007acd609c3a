"""Monitors: what watches each dataset, enable / disable, edit with a backtest preview
before saving, and how noisy each monitor has been."""
import datetime as dt
import json

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from dashboard import identity, metric_charts, services
from dashboard.services import DETECTORS, MonitorConfig
from dashboard.text import md

st.title("Monitors")
datasets = services.datasets_frame()
if datasets.empty:
    st.info("No dataset yet, so nothing to watch. Land the demo with `python -m monitors demo`.")
    st.stop()
who = identity.actor()
problem = services.config_problem()
if problem:
    st.error("The monitors YAML cannot be used, so monitors cannot be listed or changed here:")
    st.code(problem, language=None)
    st.stop()

def reset_form() -> None:
    """Another dataset or monitor picked: the form is filled again from what it declares."""
    st.session_state.pop("monitors.form_for", None)
    st.session_state.pop("monitors.previewed", None)


dataset = st.selectbox("Dataset", datasets["dataset"].tolist(), key="monitors.pick",
                       on_change=reset_form)
monitors = services.monitors_frame(dataset)
live = int(monitors["enabled"].sum())
st.caption(f"{live} monitor(s) watch {md(dataset)}; {len(monitors) - live} disabled. Automatic ones "
           "come with the dataset; a configured monitor of the same name tunes or disables one. "
           "Changes are written to the monitors YAML and apply from the next run.")
st.dataframe(monitors, hide_index=True, key="monitors.table",
             column_config={"enabled": st.column_config.CheckboxColumn("enabled")})

flash = st.session_state.pop("monitors.flash", None)
if flash:
    st.success(flash)

names = monitors["monitor"].tolist()
editable = monitors[monitors["kind"] == "metric"]["monitor"].tolist()
# opens on a monitor whose options can be edited and backtested
name = st.selectbox("Monitor", names, index=names.index(editable[0]) if editable else 0,
                    key="monitors.monitor", on_change=reset_form)
row = monitors[monitors["monitor"] == name].iloc[0]
toggle_label = "Disable" if row["enabled"] else "Enable"
if row["kind"] in ("contract", "freshness", "missing"):
    st.caption("Contract and freshness monitors switch with their automatic family "
               "(freshness: late and missing together).")
if st.button(f"{toggle_label} {md(name)}", key="monitors.toggle", disabled=not who.can_act,
             help=who.why_not):
    try:
        version = services.set_monitor_enabled(dataset, name, not row["enabled"], by=who.name)
    except ValueError as exc:
        st.error(md(exc))
    else:
        st.session_state["monitors.flash"] = (f"{md(name)} {'disabled' if row['enabled'] else 'enabled'} "
                                              f"by {md(who.name)} (config version {version}).")
        st.rerun()

st.subheader("Edit and backtest")
current = services.editable_monitor(dataset, name)
if current is None:
    st.caption(f"{md(name)} is a {md(row['kind'])} monitor: its options are not a metric monitor's. "
               "Pick a metric monitor to edit it, or add a new one below by its name.")
    current = MonitorConfig(name=f"custom:{dataset}", metric="row_count", detector="anomalies")

metric_names = services.metric_names_frame(dataset)
columns = sorted(metric_names["column"].unique(), key=lambda c: (c != services.TABLE_LEVEL, c))
partitions = services.metric_series_frame(dataset, None, "row_count")
last_day = partitions["partition"].max().date() if not partitions.empty else dt.date.today()
first_day = partitions["partition"].min().date() if not partitions.empty else last_day

if st.session_state.get("monitors.form_for") != (dataset, name):
    # the form's fields are set through their state, not their defaults: a browser keeps what
    # a widget showed when only its default changes, so the form went on editing (and
    # previewing) the first monitor whichever one was picked
    st.session_state.update({
        "monitors.form_for": (dataset, name), "monitors.name": current.name,
        "monitors.detector": current.detector, "monitors.severity": current.severity,
        "monitors.column": current.column or services.TABLE_LEVEL,
        "monitors.metric": current.metric,
        "monitors.options": json.dumps(current.options, indent=1, sort_keys=True),
        "monitors.from": max(first_day, last_day - dt.timedelta(days=89)),
        "monitors.to": last_day})

with st.form(key="monitors.edit_form"):
    a, b, c = st.columns(3)
    new_name = a.text_input("Name", key="monitors.name")
    detector = b.selectbox("Detector", DETECTORS, key="monitors.detector")
    severity = c.selectbox("Severity", services.SEVERITIES, key="monitors.severity")
    column_value = current.column or services.TABLE_LEVEL
    column_choices = columns if column_value in columns else [column_value, *columns]
    column = a.selectbox("Column", column_choices, key="monitors.column")
    metric = b.text_input("Metric", key="monitors.metric",
                          help="row_count, null_fraction, mean, p50, freq, quantiles (drift), ...")
    options_text = st.text_area("Options (JSON)", key="monitors.options", height=110,
                                help="Each detector's options are checked when the monitor is "
                                     "previewed or saved; an unknown one is refused by name.")
    d, e = st.columns(2)
    start = d.date_input("Backtest from", min_value=first_day, max_value=last_day,
                         key="monitors.from")
    end = e.date_input("Backtest to", min_value=first_day, max_value=last_day,
                       key="monitors.to")
    preview = st.form_submit_button("Preview backtest", key="monitors.preview", type="primary")
    save = st.form_submit_button("Save to the monitors YAML", key="monitors.save",
                                 disabled=not who.can_act, help=who.why_not)


def edited() -> MonitorConfig | None:
    try:
        options = json.loads(options_text or "{}")
        return MonitorConfig(name=new_name.strip(), metric=metric.strip(),
                             column=None if column == services.TABLE_LEVEL else column,
                             detector=detector, options=options, severity=severity)
    except ValidationError as exc:  # options are checked against the detector registry here
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'monitor'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors())
        st.error(f"This monitor is not valid: {md(problems)}")
    except ValueError as exc:  # the options are not JSON
        st.error(f"This monitor is not valid: {md(exc)}")
    return None


if preview or save:
    monitor = edited()
    if monitor is not None:
        as_json = monitor.model_dump_json()
        if preview:
            st.session_state["monitors.previewed"] = {"monitor": as_json, "from": start, "to": end}
        elif st.session_state.get("monitors.previewed", {}).get("monitor") != as_json:
            st.warning("Preview the backtest of this version before saving it: see what it "
                       "would have raised first.")
            st.session_state["monitors.previewed"] = {"monitor": as_json, "from": start, "to": end}
        else:
            try:
                version = services.save_monitor(dataset, monitor, by=who.name)
            except ValueError as exc:
                st.error(md(exc))
            else:
                st.session_state.pop("monitors.previewed", None)
                st.session_state["monitors.flash"] = (f"{md(monitor.name)} saved by {md(who.name)} "
                                                      f"(config version {version}).")
                st.rerun()

previewed = st.session_state.get("monitors.previewed")
if previewed is not None:
    monitor = MonitorConfig.model_validate_json(previewed["monitor"])
    try:
        alerts = services.backtest_frame(dataset, previewed["monitor"], previewed["from"], previewed["to"])
    except ValueError as exc:
        st.error(f"The backtest could not run: {md(exc)}")
    else:
        days = (previewed["to"] - previewed["from"]).days + 1
        st.markdown(f"**Backtest of {md(monitor.name)}** from {previewed['from']} to {previewed['to']}: "
                    f"**{len(alerts)} alert(s)** over {days} day(s) "
                    f"({len(alerts) / max(days / 7, 1):.2f} per week). Nothing was recorded.")
        chart_metric = "p50" if monitor.metric == "quantiles" else monitor.metric
        column_name = monitor.column or services.TABLE_LEVEL
        if chart_metric != "freq":
            series = services.metric_series_frame(dataset, column_name, chart_metric)
            window = series[(series["partition"] >= pd.Timestamp(previewed["from"]))
                            & (series["partition"] <= pd.Timestamp(previewed["to"]))]
            marks = window.merge(alerts[["partition", "message"]], on="partition").rename(
                columns={"message": "label"})
            st.plotly_chart(metric_charts.metric_figure(
                window, title=f"{monitor.column or 'table'} · {chart_metric}", y_title=chart_metric,
                marks=marks, mark_name="would alert"), key="monitors.backtest_chart")
        if not alerts.empty:
            st.plotly_chart(metric_charts.alerts_per_week_figure(
                alerts, previewed["from"], previewed["to"], title="Alerts per week"),
                key="monitors.backtest_weeks")
        st.dataframe(alerts[["partition", "week", "value", "expected", "lower", "upper", "message"]],
                     hide_index=True, key="monitors.backtest_table",
                     column_config={"partition": st.column_config.DateColumn()})

st.subheader("Columns not watched automatically")
skipped = services.skipped_columns_frame(dataset)
if skipped.empty:
    st.caption(f"Every column of {md(dataset)} is watched by the automatic monitors that fit its type.")
else:
    st.caption("Automatic level, profile, category and drift monitors leave these columns out; "
               "what still watches each is listed.")
    st.dataframe(skipped, hide_index=True, key="monitors.skipped")

st.subheader("Pinned drift reference")
references = services.references_frame(dataset)
if references.empty:
    st.caption(f"No pinned reference: drift on {md(dataset)} is judged against recent batches "
               "only, so a drift that persists fades from view. Pin a period (the model's "
               "training period, say) to judge against it as well.")
else:
    st.caption("Drift is judged against these as well as against recent batches.")
    st.dataframe(references, hide_index=True, key="monitors.judge.references",
                 column_config={"from": st.column_config.DateColumn(),
                                "to": st.column_config.DateColumn()})
with st.form(key="monitors.pin_form"):
    a, b, c = st.columns(3)
    pin_column = a.selectbox("Column", [services.EVERY_COLUMN, *services.contract_columns(dataset)],
                             key="monitors.pin_column")
    pin_from = b.date_input("From", value=first_day, min_value=first_day, max_value=last_day,
                            key="monitors.pin_from")
    pin_to = c.date_input("To", value=min(last_day, first_day + dt.timedelta(days=27)),
                          min_value=first_day, max_value=last_day, key="monitors.pin_to")
    pin = st.form_submit_button("Pin this reference", key="monitors.pin",
                                disabled=not who.can_act, help=who.why_not)
if pin:
    try:
        version = services.pin_reference(
            dataset, pin_from, pin_to, None if pin_column == services.EVERY_COLUMN else pin_column,
            by=who.name)
    except ValueError as exc:
        st.error(md(exc))
    else:
        st.session_state["monitors.flash"] = (f"Drift reference of {md(pin_column)} pinned to "
                                              f"{pin_from}..{pin_to} by {md(who.name)} "
                                              f"(config version {version}).")
        st.rerun()
if not references.empty:
    d, e = st.columns([2, 1])
    unpin_column = d.selectbox("Pinned reference", references["column"].tolist(),
                               key="monitors.unpin_column")
    if e.button("Unpin", key="monitors.unpin", disabled=not who.can_act, help=who.why_not):
        try:
            version = services.unpin_reference(
                dataset, None if unpin_column == services.EVERY_COLUMN else unpin_column,
                by=who.name)
        except ValueError as exc:
            st.error(md(exc))
        else:
            st.session_state["monitors.flash"] = (f"Drift reference of {md(unpin_column)} "
                                                  f"unpinned by {md(who.name)} (config version {version}).")
            st.rerun()

st.subheader("Noise per monitor")
noise = services.noise_frame(dataset)
if noise.empty:
    st.caption("No alert raised on this dataset yet.")
else:
    st.caption("Alerts per week over the dataset's delivered span. The false-positive share is "
               "among alerts a person resolved (`judged`); auto-resolved ones are left out.")
    st.dataframe(noise, hide_index=True, key="monitors.noise",
                 column_config={"false_positive_share": st.column_config.NumberColumn(format="percent")})

changes = services.config_log_frame()
if not changes.empty:
    st.subheader("Recent changes from the dashboard")
    st.dataframe(changes, hide_index=True, key="monitors.changes")
