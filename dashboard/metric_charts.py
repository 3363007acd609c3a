"""Figures for the datasets, model outputs, monitors and pipeline pages: data in, plotly
figure out. No Streamlit, no store.

Time axes carry float epoch milliseconds with the axis typed as dates: datetime x values
cost four times the JSON (PLATFORM.md), and the browser parses every byte.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.text import chart_text

# a few thousand points per trace draw in a second in Chromium; more only costs time
MAX_POINTS = 2000

LINE = "#1f77b4"
BAND = "rgba(31, 119, 180, 0.15)"
INNER_BAND = "rgba(31, 119, 180, 0.32)"
ALERT = "#d62728"
LATE = "#ff7f0e"
OK = "#2ca02c"


def epoch_ms(values) -> np.ndarray:
    """Datetimes (any unit, pandas 3 defaults to microseconds) as float epoch milliseconds."""
    stamps = pd.DatetimeIndex(pd.to_datetime(values))
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    return stamps.as_unit("ms").asi8.astype("float64")


def downsample(frame: pd.DataFrame, max_points: int = MAX_POINTS, x: str = "partition",
               y: str = "value") -> pd.DataFrame:
    """At most about `max_points` rows, keeping each bucket's lowest and highest point so a
    spike survives the thinning (an average would hide exactly what people look for)."""
    if len(frame) <= max_points:
        return frame
    frame = frame.sort_values(x, kind="stable").reset_index(drop=True)
    buckets = np.arange(len(frame)) * (max_points // 2) // len(frame)
    values = frame[y].astype("float64")
    keep = set()
    for _, positions in values.groupby(buckets).groups.items():
        chunk = values.loc[positions].dropna()
        if chunk.empty:
            keep.add(positions[0])
            continue
        keep.update((chunk.idxmin(), chunk.idxmax()))
    return frame.loc[sorted(keep)].reset_index(drop=True)


def _layout(fig: go.Figure, title: str | None, y_title: str | None, height: int = 360) -> go.Figure:
    # the title on the left, the legend on the right of the same line: stacked, they overlap
    fig.update_layout(title=dict(text=chart_text(title) if title else title, x=0, xanchor="left"),
                      height=height, margin=dict(l=10, r=10, t=48 if title else 24, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"),
                      hovermode="x unified", yaxis_title=y_title)
    fig.update_xaxes(type="date")
    return fig


def metric_figure(series: pd.DataFrame, *, title: str | None = None, y_title: str | None = None,
                  marks: pd.DataFrame | None = None, mark_name: str = "alert") -> go.Figure:
    """A metric over time (`partition`, `value`), with optional marked points (`partition`,
    `value`, `label`) such as alerts a monitor raised or would raise."""
    fig = go.Figure()
    series = downsample(series)
    fig.add_trace(go.Scatter(x=epoch_ms(series["partition"]), y=series["value"], mode="lines",
                             name=y_title or "value", line=dict(color=LINE, width=1.6),
                             connectgaps=False))
    if marks is not None and not marks.empty:
        fig.add_trace(go.Scatter(
            x=epoch_ms(marks["partition"]), y=marks["value"], mode="markers", name=mark_name,
            marker=dict(color=ALERT, size=10, symbol="x"),
            text=marks["label"].map(chart_text) if "label" in marks else None, hovertemplate="%{text}<extra></extra>"))
    return _layout(fig, title, y_title)


def quantile_band_figure(quantiles: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """A score's distribution over time: p05-p95 and p25-p75 as bands, the median as a line.
    `quantiles`: one row per partition with p05, p25, p50, p75, p95."""
    fig = go.Figure()
    x = epoch_ms(quantiles["partition"])
    for lower, upper, fill, name in (("p05", "p95", BAND, "p05-p95"),
                                     ("p25", "p75", INNER_BAND, "p25-p75")):
        # the band: an invisible lower edge, then the upper edge filled down to it
        fig.add_trace(go.Scatter(x=x, y=quantiles[lower], mode="lines", line=dict(width=0),
                                 showlegend=False, hoverinfo="skip", name=lower))
        fig.add_trace(go.Scatter(x=x, y=quantiles[upper], mode="lines", line=dict(width=0),
                                 fill="tonexty", fillcolor=fill, name=name,
                                 customdata=quantiles[lower],
                                 hovertemplate=f"{name}: %{{customdata:.3f}}-%{{y:.3f}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=quantiles["p50"], mode="lines", name="median",
                             line=dict(color=LINE, width=2)))
    return _layout(fig, title, "score")


def class_mix_figure(shares: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Stacked shares per partition: `shares` has partition, key (the class) and share."""
    fig = go.Figure()
    wide = shares.pivot_table(index="partition", columns="key", values="share", aggfunc="sum").fillna(0)
    x = epoch_ms(wide.index)
    for key in wide.columns:
        # the class is data: escaped in the name, and kept out of the hover's template
        fig.add_trace(go.Scatter(x=x, y=wide[key], mode="lines", stackgroup="mix",
                                 name=chart_text(key), line=dict(width=0.5),
                                 hovertemplate="%{fullData.name}: %{y:.1%}<extra></extra>"))
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return _layout(fig, title, "share")


def drift_figure(drift: pd.DataFrame, *, measure: str, limit: float,
                 title: str | None = None) -> go.Figure:
    """The drift distance per partition against the reference window, the limit as a line,
    the partitions over it marked. `drift`: partition, value, exceeded (bool), detail."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=epoch_ms(drift["partition"]), y=drift["value"], mode="lines+markers",
                             name=measure, line=dict(color=LINE, width=1.5), marker=dict(size=4)))
    over = drift[drift["exceeded"]]
    if not over.empty:
        fig.add_trace(go.Scatter(x=epoch_ms(over["partition"]), y=over["value"], mode="markers",
                                 name="over the limit", marker=dict(color=ALERT, size=11, symbol="x"),
                                 text=over["detail"].map(chart_text), hovertemplate="%{text}<extra></extra>"))
    fig.add_hline(y=limit, line=dict(color=ALERT, dash="dash", width=1),
                  annotation_text=f"limit {limit:g}", annotation_position="top left")
    return _layout(fig, title, measure)


def freshness_figure(freshness: pd.DataFrame, *, deadline_hours: float,
                     title: str | None = None) -> go.Figure:
    """Arrival delay per partition (hours after its day ended) against the deadline; late
    partitions in orange, missing ones as red marks on the axis."""
    fig = go.Figure()
    arrived = freshness[freshness["state"] != "missing"]
    # one trace per state, so the legend says what orange means
    for name, rows, colour in (("arrival delay (h)", arrived[arrived["state"] != "late"], OK),
                               ("late", arrived[arrived["state"] == "late"], LATE)):
        if not rows.empty:
            fig.add_trace(go.Bar(x=epoch_ms(rows["partition"]), y=rows["delay_hours"],
                                 marker_color=colour, name=name,
                                 hovertemplate="%{y:.1f} h<extra></extra>"))
    missing = freshness[freshness["state"] == "missing"]
    if not missing.empty:
        fig.add_trace(go.Scatter(x=epoch_ms(missing["partition"]), y=[0] * len(missing),
                                 mode="markers", name="missing",
                                 marker=dict(color=ALERT, size=12, symbol="x")))
    fig.add_hline(y=deadline_hours, line=dict(color=ALERT, dash="dash", width=1),
                  annotation_text=f"deadline {deadline_hours:g} h", annotation_position="top left")
    fig.update_layout(bargap=0.1)
    return _layout(fig, title, "hours after the day ended", height=300)


def alerts_per_week_figure(alerts: pd.DataFrame, start, end, *, title: str | None = None) -> go.Figure:
    """How many alerts each ISO week from `start` to `end` would have had (quiet weeks as
    zeros, so a burst reads as a burst): `alerts` has a `week` column ("2026-W24")."""
    days = pd.date_range(start, end, freq="D")
    weeks = list(dict.fromkeys(f"{d.isocalendar().year}-W{d.isocalendar().week:02d}" for d in days))
    counts = alerts.groupby("week").size().reindex(weeks, fill_value=0)
    fig = go.Figure(go.Bar(x=weeks, y=counts.to_numpy(), marker_color=ALERT, name="alerts"))
    fig.update_layout(title=dict(text=chart_text(title) if title else title, x=0, xanchor="left"),
                      height=220,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      yaxis_title="alerts", xaxis_type="category")
    return fig


def performance_figure(frame: pd.DataFrame, metric: str, *, title: str | None = None) -> go.Figure:
    """A performance figure over time, one line per model version (`frame`: partition,
    model_version, the metric; None = all versions together); for the AUC, the estimate made
    before the labels landed, with its band, for all versions together."""
    fig = go.Figure()
    overall = frame[frame["model_version"].isna()].sort_values("partition")
    if metric == "auc" and overall["estimated_auc"].notna().any():
        band = overall[overall["estimated_auc"].notna()]
        x = epoch_ms(band["partition"])
        fig.add_trace(go.Scatter(x=x, y=band["estimated_auc_lower"], mode="lines",
                                 line=dict(width=0), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=band["estimated_auc_upper"], mode="lines",
                                 line=dict(width=0), fill="tonexty", fillcolor=BAND,
                                 name="estimate band"))
        fig.add_trace(go.Scatter(x=x, y=band["estimated_auc"], mode="lines", name="estimated",
                                 line=dict(color=LINE, width=1.2, dash="dot")))
    for version, rows in frame.groupby(frame["model_version"].fillna(""), sort=True):
        rows = rows[rows[metric].notna()].sort_values("partition")
        if rows.empty:
            continue
        fig.add_trace(go.Scatter(
            x=epoch_ms(rows["partition"]), y=rows[metric], mode="lines+markers",
            marker=dict(size=4), name=f"{version or 'all versions'}",
            line=dict(width=2.2 if not version else 1.2, color=LINE if not version else None)))
    return _layout(fig, title, metric)


def reliability_figure(curve: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Observed positive rate against mean score per score bin (`curve`: mean_score,
    positive_rate, rows), with the diagonal a calibrated model lies on."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated",
                             line=dict(color="#999999", dash="dash")))
    fig.add_trace(go.Scatter(x=curve["mean_score"], y=curve["positive_rate"], mode="lines+markers",
                             name="observed", line=dict(color=LINE),
                             marker=dict(size=(6 + 14 * curve["rows"] / max(curve["rows"].max(), 1)).tolist()),
                             text=[f"{int(n)} rows" for n in curve["rows"]],
                             hovertemplate="score %{x:.2f}: %{y:.2f} positive (%{text})<extra></extra>"))
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), height=360,
                      margin=dict(l=10, r=10, t=48 if title else 24, b=10),
                      xaxis_title="mean score", yaxis_title="positive rate")
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    return fig
