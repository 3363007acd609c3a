"""Model outputs: score distribution over time, predicted-class mix, drift against the
reference window."""
import streamlit as st

from dashboard import metric_charts, services
from dashboard.text import md

st.title("Model outputs")
datasets = services.datasets_frame()
outputs = datasets[datasets["kind"] == "model_output"]["dataset"].tolist()
if not outputs:
    st.info("No dataset of kind `model_output` yet. Declare one in the monitors YAML "
            "(`kind: model_output`), or land the demo with `python -m monitors demo`.")
    st.stop()

dataset = st.selectbox("Model output", outputs, key="model_outputs.pick")
columns = services.output_columns_frame(dataset)
scores = columns[columns["profile"] == "quantiles"]["column"].tolist()
classes = columns[columns["profile"] == "freq"]["column"].tolist()
left, middle, right = st.columns(3)
score = left.selectbox("Score column", scores, key="model_outputs.score_column") if scores else None
klass = middle.selectbox("Class column", classes, key="model_outputs.class_column") if classes else None
DRIFT_SPANS = {"last 90 days": 90, "last 180 days": 180, "last 365 days": 365, "all history": None}
span = right.selectbox("Drift tested over", list(DRIFT_SPANS), key="model_outputs.drift_span",
                       help="Each partition is compared with the partitions before it; "
                            "long spans take a few seconds the first time.")


def drift_section(column: str, profile: str, key: str) -> None:
    drift, measure, limit = services.drift_frame(dataset, column, profile, DRIFT_SPANS[span])
    if drift.empty:
        st.info(f"Not enough history to compare {md(column)} with a reference window yet.")
        return
    over = drift[drift["exceeded"]]
    st.plotly_chart(metric_charts.drift_figure(
        drift, measure=measure, limit=limit,
        title=f"{column}: {measure} against the trailing reference window"),
        key=f"model_outputs.{key}_drift_chart")
    if over.empty:
        st.caption(f"{md(column)} stayed within the limit on all {len(drift)} partitions compared.")
    else:
        st.caption(f"{len(over)} of {len(drift)} partitions over the limit ({limit:g}).")
        st.dataframe(over[["partition", "value", "limit", "detail"]].sort_values("partition", ascending=False),
                     hide_index=True, key=f"model_outputs.{key}_drift_table",
                     column_config={"partition": st.column_config.DateColumn()})


st.subheader("Score distribution over time")
if score is None:
    st.info("This output has no numeric column to chart.")
else:
    quantiles = services.quantiles_frame(dataset, score)
    if quantiles.empty:
        st.info(f"No profile of {md(score)} stored yet.")
    else:
        st.plotly_chart(metric_charts.quantile_band_figure(
            quantiles, title=f"{score}: median, p25-p75 and p05-p95 per partition"),
            key="model_outputs.score_chart")
        drift_section(score, "quantiles", "score")

st.subheader("Predicted-class mix")
if klass is None:
    st.info("This output has no categorical column to chart.")
else:
    shares = services.class_mix_frame(dataset, klass)
    if shares.empty:
        st.info(f"No class counts of {md(klass)} stored yet.")
    else:
        st.plotly_chart(metric_charts.class_mix_figure(shares, title=f"{klass}: share of each class"),
                        key="model_outputs.class_chart")
        drift_section(klass, "freq", "class")

st.subheader("Performance once the labels land")
realised = services.performance_frame(dataset)
if realised is None:
    st.info("This model output has no labels. Name them in its config "
            "(`labels: {dataset: ..., key: ..., label: ..., delay_days: 7}`) to see its AUC, "
            "calibration and the estimate made before they land.")
elif realised.empty:
    st.info("No predictions of this model have been scored or labelled yet.")
else:
    overall = realised[realised["model_version"].isna()]
    labelled = overall[overall["labelled"]]
    waiting = overall[~overall["labelled"]]
    measured = labelled.dropna(subset=["auc", "estimated_auc"])
    error = (measured["auc"] - measured["estimated_auc"]).abs().mean() if len(measured) else None
    first, second, third = st.columns(3)
    first.metric("Last labelled partition",
                 labelled["partition"].max().date().isoformat() if len(labelled) else "none")
    second.metric("Partitions awaiting labels", len(waiting))
    third.metric("Estimate's mean error (AUC)", f"{error:.3f}" if error is not None else "n/a",
                 help="Mean absolute gap between the AUC estimated before the labels landed "
                      "and the realised AUC, over the labelled partitions that had an estimate.")
    figures = ["auc", "average_precision", "brier", "log_loss", "ece", "precision", "recall",
               "f1", "positive_rate", "coverage"]
    metric = st.selectbox("Figure", figures, key="model_outputs.performance_metric")
    st.plotly_chart(metric_charts.performance_figure(
        realised, metric, title=f"{metric} per partition (realised; the estimate before labels)"),
        key="model_outputs.performance_chart")

    versions = realised[realised["model_version"].notna()]
    if not versions.empty:
        st.markdown("**Model versions side by side** (labelled partitions, and the estimate "
                    "of those awaiting labels)")
        side = (versions[versions["labelled"]].groupby("model_version")
                .agg(first_partition=("partition", "min"), last_partition=("partition", "max"),
                     partitions=("partition", "count"), auc=("auc", "mean"),
                     brier=("brier", "mean"), ece=("ece", "mean"),
                     labelled_rows=("labelled_rows", "sum"))
                .reset_index())
        # each version's estimate over the partitions still awaiting labels: a rollout
        # compared before the outcomes are in
        ahead = (versions[~versions["labelled"]].groupby("model_version")["estimated_auc"]
                 .mean().rename("estimated_auc_awaiting_labels").reset_index())
        side = side.merge(ahead, on="model_version", how="outer")
        st.dataframe(side, hide_index=True, key="model_outputs.versions",
                     column_config={"first_partition": st.column_config.DateColumn(),
                                    "last_partition": st.column_config.DateColumn()})

    if len(labelled):
        days = sorted(labelled["partition"].dt.date, reverse=True)
        left, right = st.columns(2)
        day = left.selectbox("Reliability of partition", days, key="model_outputs.reliability_day")
        names = ["all versions", *sorted(versions["model_version"].unique())]
        chosen = right.selectbox("Version", names, key="model_outputs.reliability_version")
        curve = services.reliability_frame(dataset, day, "" if chosen == "all versions" else chosen)
        if curve.empty:
            st.info(f"No labelled rows of {md(chosen)} on {day}.")
        else:
            st.plotly_chart(metric_charts.reliability_figure(
                curve, title=f"Reliability on {day} ({chosen})"),
                key="model_outputs.reliability_chart")
