"""Overview: is anything on fire, where, and since when. Every count links to the alerts
behind it."""
import streamlit as st

from dashboard import charts, services
from dashboard.identity import actor
from dashboard.text import md
from dashboard.times import when_column

ALERTS_PAGE = "dashboard/views/alerts.py"
# cell colours, not emoji: the browsers people run headless (and some desks) lack an emoji font
COLOURS = {"critical": "#f8d0d0", "missing": "#f8d0d0", "quarantined": "#f8d0d0",
           "warning": "#fde3c2", "late": "#fde3c2", "info": "#d6e6fa",
           "ok": "#d5efd5", "arrived": "#d5efd5", "pending": "#ececec"}
STATES = ("arrived", "late", "quarantined", "missing", "pending")


def coloured(frame, column: str):
    return frame.style.map(lambda v: f"background-color: {COLOURS.get(v, 'transparent')}",
                           subset=[column]).format(
        precision=1, na_rep="", subset=list(frame.select_dtypes("float").columns))


st.title("Overview")
actor()

health = services.health_frame()
if health.empty:
    st.info("The store holds no dataset yet. Land the demo with `python -m monitors demo`, "
            "or a file of your own with `python -m monitors ingest --create`.")
    st.stop()

counts = services.status_counts()
opened, acknowledged, muted = st.columns(3)
with opened:
    # one cause, one incident: a knock-on alert is counted with its root, not again
    st.metric("Open incidents", counts["open"], border=True,
              help="Open alerts that no mute covers, each with the knock-on alerts it caused")
    if counts["caused"]:
        st.caption(f"and {counts['caused']} knock-on alert(s) caused by the open and "
                   "acknowledged ones, shown under their root")
    st.page_link(ALERTS_PAGE, label="Open alerts →", query_params={"status": "open"})
with acknowledged:
    st.metric("Acknowledged", counts["acknowledged"], border=True)
    st.page_link(ALERTS_PAGE, label="Acknowledged alerts →",
                 query_params={"status": "acknowledged"})
with muted:
    st.metric("Muted", counts["muted"], border=True,
              help="Open or acknowledged alerts an active mute keeps quiet")
    st.page_link(ALERTS_PAGE, label="Muted alerts →",
                 query_params={"status": "open,acknowledged", "muted": "only"})

st.subheader("Health per dataset")
st.caption("A dataset's health is the worst severity among its open and acknowledged alerts "
           "that no mute covers. An alert caused by another one (its incident's root, here or "
           "upstream) is counted under caused, not again as open or acknowledged.")
st.dataframe(coloured(health.drop(columns="upstream"), "health"), hide_index=True,
             key="overview.health",
             column_config={"last alert seen": when_column("last alert seen")})
links = st.columns(min(len(health), 4))
for i, row in enumerate(health.itertuples(index=False)):
    if row.open + row.acknowledged + row.caused:  # the alerts the link lists, knock-ons too
        links[i % len(links)].page_link(
            ALERTS_PAGE, label=f"{md(row.dataset)}: {row.open + row.acknowledged + row.caused} unresolved →",
            query_params={"dataset": row.dataset, "status": "open,acknowledged"})

if any(len(u) for u in health["upstream"]):
    st.subheader("Lineage")
    st.caption("Each arrow goes from a dataset to one built from it; an alert upstream holds "
               "the partitions built from it when it is as severe as their gate holds on "
               "(critical unless the config's `gate: {holds_on: ...}` says otherwise; "
               "`python -m monitors gate`).")
    st.graphviz_chart(charts.lineage_graph(health))

partition = st.date_input("Batches of partition", value=services.expected_partition(),
                          key="overview.partition",
                          help="Defaults to yesterday (UTC): the partition a daily pipeline "
                               "delivers today.")
batches = services.partition_batches_frame(partition)
tally = batches["state"].value_counts()
st.subheader(f"Batches for {partition}: " + ", ".join(
    f"{tally.get(state, 0)} {state}" for state in STATES if tally.get(state, 0)))
st.dataframe(coloured(batches, "state"), hide_index=True, key="overview.batches",
             column_config={"arrived at": when_column("arrived at")})

st.subheader("Alerts per day")
per_day = services.firings_per_day_frame()
if per_day.empty:
    st.caption("No alert fired in the last 180 days.")
else:
    st.caption("Each bar counts the alerts that fired on a partition, by severity.")
    st.plotly_chart(charts.alerts_per_day(per_day), key="overview.per_day")

noisy, runs = st.columns(2)
with noisy:
    st.subheader("Noisiest monitors")
    monitors = services.noisiest_monitors_frame()
    st.dataframe(monitors, hide_index=True, key="overview.noisy")
    for row in monitors.head(3).itertuples(index=False):
        st.page_link(ALERTS_PAGE, label=f"{md(row.dataset)} · {md(row.monitor)} →",
                     query_params={"dataset": row.dataset, "monitor": row.monitor,
                                   "status": "open,acknowledged,resolved"})
with runs:
    st.subheader("Last runs")
    st.dataframe(services.last_runs_frame(), hide_index=True, key="overview.runs")
    st.page_link("dashboard/views/pipeline.py", label="Pipeline →")
