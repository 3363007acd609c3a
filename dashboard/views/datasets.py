"""Datasets: each column's metrics over time, the schema's history, batches and freshness."""
import streamlit as st

from dashboard import metric_charts, services
from dashboard.text import md
from dashboard.times import when_column

st.title("Datasets")
datasets = services.datasets_frame()
if datasets.empty:
    st.info("The store holds no dataset yet. Land the demo with `python -m monitors demo`, "
            "or a file of your own with `python -m monitors ingest --create`.")
    st.stop()
st.dataframe(datasets, hide_index=True, key="datasets.table")

names = datasets["dataset"].tolist()
wanted = st.query_params.get("dataset")
dataset = st.selectbox("Dataset", names, index=names.index(wanted) if wanted in names else 0,
                       key="datasets.pick")
info = services.dataset_frame(dataset).iloc[0]
st.caption(f"{md(info['kind'].replace('_', ' '))} · {md(info['format'])} · schedule {md(info['schedule'])} (UTC)"
           f" · due {info['deadline_hours']:g} h after its day ends"
           + (" · **schedule paused**" if info["paused"] else ""))

# what arrived and what was refused comes first: it is the first question about a dataset
batches_tab, metrics_tab, schema_tab, freshness_tab = st.tabs(
    ["Batches", "Metrics over time", "Schema history", "Freshness"])

with batches_tab:
    batches = services.batches_frame(dataset)
    quarantined = batches[batches["status"] == "quarantined"]
    if not quarantined.empty:
        st.subheader(f"Quarantined ({len(quarantined)})")
        st.dataframe(quarantined[["dataset", "partition", "reason"]], hide_index=True,
                     key="datasets.quarantined",
                     column_config={"reason": st.column_config.TextColumn(width="large")})
        # a reason is a sentence naming columns: the grid cuts it, so the newest is spelt out
        newest = quarantined.iloc[0]
        st.caption(f"Newest, {md(newest['partition'])}: {md(newest['reason'])}")
    st.subheader(f"Batches ({len(batches)})")
    st.dataframe(batches, hide_index=True, key="datasets.batches",
                 column_config={"arrived at": when_column("arrived at")})

with metrics_tab:
    names_frame = services.metric_names_frame(dataset)
    if names_frame.empty:
        st.info("No metrics stored yet: a batch is profiled when it lands.")
    else:
        columns = sorted(names_frame["column"].unique(), key=lambda c: (c != services.TABLE_LEVEL, c))
        left, right = st.columns(2)
        column = left.selectbox("Column", columns, key="datasets.column")
        choices = sorted(set(names_frame.loc[names_frame["column"] == column, "metric"]) - {"freq_other"})
        default = next((m for m in ("row_count", "mean", "null_fraction") if m in choices), choices[0])
        metric = right.selectbox("Metric", choices, index=choices.index(default), key="datasets.metric")
        if metric == "freq":
            shares = services.class_mix_frame(dataset, column)
            st.plotly_chart(metric_charts.class_mix_figure(shares, title=f"{column}: category shares"),
                            key="datasets.metric_chart")
        else:
            series = services.metric_series_frame(dataset, column, metric)
            st.plotly_chart(metric_charts.metric_figure(series, title=f"{column} · {metric}",
                                                        y_title=metric),
                            key="datasets.metric_chart")
            st.caption(f"{len(series)} points shown (thinned on the server past "
                       f"{services.MAX_SERIES_POINTS}, keeping each stretch's extremes).")

with schema_tab:
    st.subheader("Contract")
    st.dataframe(services.contract_frame(dataset), hide_index=True, key="datasets.contract")
    st.subheader("Shape of the batches over time")
    schema = services.schema_history_frame(dataset)
    changes = schema["fingerprint"].dropna().nunique()
    broken = int((schema["status"] == "quarantined").sum())
    st.caption(f"{changes} schema fingerprint(s) among the batches in force; {broken} "
               "delivery(ies) quarantined for breaking the contract. Newest first.")
    st.dataframe(schema, hide_index=True, key="datasets.schema")

with freshness_tab:
    freshness = services.freshness_frame(dataset)
    if freshness.empty:
        st.info("No batch has arrived yet.")
    else:
        late = freshness[freshness["state"] == "late"]
        missing = freshness[freshness["state"] == "missing"]
        a, b, c = st.columns(3)
        a.metric("On time", int((freshness["state"] == "on time").sum()))
        b.metric("Late", len(late))
        c.metric("Missing", len(missing))
        st.plotly_chart(metric_charts.freshness_figure(freshness, deadline_hours=float(info["deadline_hours"])),
                        key="datasets.freshness_chart")
        problems = freshness[freshness["state"] != "on time"].sort_values("partition", ascending=False)
        if not problems.empty:
            st.subheader("Late and missing partitions")
            st.dataframe(problems, hide_index=True, key="datasets.freshness",
                         column_config={"partition": st.column_config.DateColumn()})
