"""Figures for the overview and the alert pages: data in, plotly figure out.

No Streamlit and no store here, so every figure can be built and checked in a plain test.
Time axes carry float epoch milliseconds on an axis typed as dates (PLATFORM.md: a quarter
of the JSON of datetime values), and long series are thinned on the server first.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.text import chart_text

# Chromium draws a few thousand points per trace in about a second; beyond that only waits
MAX_POINTS = 3000
SEVERITY_COLOURS = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
SEVERITY_ORDER = ("critical", "warning", "info")  # worst first, as store.models.Severity
METRIC = "#1f77b4"
BAND_FILL = "rgba(31, 119, 180, 0.15)"
EXPECTED = "rgba(31, 119, 180, 0.6)"
ANOMALY = "#d62728"
BREAKOUT = "#9467bd"
NEW_NORMAL = "#2ca02c"   # an accepted baseline marker
THRESHOLD = "#ff7f0e"


def epoch_ms(values: Iterable) -> np.ndarray:
    """Any datetimes (pandas 3 defaults to microseconds; zones dropped after UTC) as float
    epoch milliseconds."""
    stamps = pd.DatetimeIndex(pd.to_datetime(values))
    if stamps.tz is not None:
        stamps = stamps.tz_convert("UTC").tz_localize(None)
    return stamps.as_unit("ms").asi8.astype("float64")


def thin(frame: pd.DataFrame, y: str, max_points: int = MAX_POINTS,
         keep: Iterable[pd.Timestamp] = ()) -> pd.DataFrame:
    """At most about `max_points` rows of a frame indexed by time: each bucket keeps its
    lowest and highest point (a mean would erase the spike someone came to see), and the
    rows at `keep` (the alert's own points) always stay."""
    if len(frame) <= max_points:
        return frame
    values = frame[y].astype("float64").to_numpy()
    buckets = np.arange(len(frame)) * (max_points // 2) // len(frame)
    chosen = set(np.flatnonzero(frame.index.isin(list(keep))))
    for bucket in np.unique(buckets):
        positions = np.flatnonzero(buckets == bucket)
        chunk = values[positions]
        if np.isnan(chunk).all():
            chosen.add(int(positions[0]))
            continue
        chosen.update((int(positions[np.nanargmin(chunk)]), int(positions[np.nanargmax(chunk)])))
    return frame.iloc[sorted(chosen)]


def _date_axes(figure: go.Figure) -> go.Figure:
    figure.update_xaxes(type="date")
    return figure


def alerts_per_day(frame: pd.DataFrame) -> go.Figure:
    """Stacked bars of firings per partition day, one colour per severity.
    `frame`: partition, severity, firings."""
    figure = go.Figure()
    for severity in SEVERITY_ORDER:
        rows = frame[frame["severity"] == severity]
        if rows.empty:
            continue
        figure.add_bar(x=epoch_ms(rows["partition"]), y=rows["firings"].astype(int).tolist(),
                       name=severity, marker_color=SEVERITY_COLOURS[severity])
    figure.update_layout(barmode="stack", height=260, margin=dict(l=10, r=10, t=10, b=10),
                         legend=dict(orientation="h", y=1.12), yaxis_title="firings",
                         bargap=0.15)
    return _date_axes(figure)


def metric_history(series: pd.Series, *, title: str, band: pd.DataFrame | None = None,
                   anomalies: pd.Series | None = None,
                   others: pd.Series | None = None,
                   breakouts: Iterable[Mapping] = (),
                   thresholds: Mapping[str, float | None] | None = None,
                   focus: pd.Timestamp | None = None,
                   markers: Iterable[Mapping] = ()) -> go.Figure:
    """The metric's history with what a monitor judged it by.

    `band`: expected, lower, upper indexed by time (drawn as a shaded band and a dotted
    expected line); `anomalies`: the values the alert fired on, indexed by time;
    `others`: further points the detector flags (drawn fainter); `breakouts`: dicts with `at` and optionally `before` and `after` (the levels of the old
    and new regimes); `thresholds`: `lower`/`upper` constants; `focus`: the alert's
    partition, drawn as a faint vertical line; `markers`: accepted new normals (`at`,
    `by`), a solid vertical line each: the monitor judges only what comes after it.
    """
    anomalies = anomalies if anomalies is not None else pd.Series(dtype=float)
    series = thin(series.to_frame("value"), "value", keep=anomalies.index)["value"]
    figure = go.Figure()
    if band is not None and not band.empty:
        band = thin(band, "expected", keep=anomalies.index)
        x = epoch_ms(band.index)
        figure.add_scatter(x=x, y=band["lower"].tolist(), mode="lines", line=dict(width=0),
                           hoverinfo="skip", showlegend=False, name="lower")
        figure.add_scatter(x=x, y=band["upper"].tolist(), mode="lines", line=dict(width=0),
                           fill="tonexty", fillcolor=BAND_FILL, name="expected band")
        figure.add_scatter(x=x, y=band["expected"].tolist(), mode="lines",
                           line=dict(color=EXPECTED, dash="dot", width=1), name="expected")
    figure.add_scatter(x=epoch_ms(series.index), y=series.tolist(), mode="lines+markers",
                       marker=dict(size=4), line=dict(color=METRIC, width=1.5), name=chart_text(title))
    if not anomalies.empty:
        figure.add_scatter(x=epoch_ms(anomalies.index), y=anomalies.tolist(), mode="markers",
                           marker=dict(color=ANOMALY, size=11, symbol="circle-open",
                                       line=dict(width=2.5)),
                           name="alert fired")
    if others is not None and not others.empty:
        figure.add_scatter(x=epoch_ms(others.index), y=others.tolist(), mode="markers",
                           marker=dict(color=ANOMALY, size=8, symbol="x", opacity=0.6),
                           name="other anomalies")
    for level, value in (thresholds or {}).items():
        if value is not None:
            figure.add_hline(y=value, line=dict(color=THRESHOLD, dash="dash", width=1),
                             annotation_text=f"{level} {value:.4g}",
                             annotation_position="top left" if level == "upper" else "bottom left")
    for breakout in breakouts:
        at = float(epoch_ms([breakout["at"]])[0])
        figure.add_vline(x=at, line=dict(color=BREAKOUT, dash="dash", width=2))
        before, after = breakout.get("before"), breakout.get("after")
        text = "breakout"
        if before is not None and after is not None:
            text = f"breakout: {before:.4g} → {after:.4g}"
            _level_segments(figure, series, at, before, after)
        figure.add_annotation(x=at, y=1.02, yref="paper", text=text, showarrow=False,
                              font=dict(color=BREAKOUT), xanchor="left")
    for marker in markers:
        at = float(epoch_ms([pd.Timestamp(marker["at"])])[0])
        figure.add_vline(x=at, line=dict(color=NEW_NORMAL, width=2))
        figure.add_annotation(x=at, y=0.98, yref="paper", showarrow=False, xanchor="left",
                              text=f"new normal ({chart_text(marker['by'])})", font=dict(color=NEW_NORMAL))
    if focus is not None:
        # a day-wide shade, behind the data: the partition the alert is about
        day = float(epoch_ms([focus])[0])
        figure.add_vrect(x0=day - 43_200_000, x1=day + 43_200_000, layer="below", line_width=0,
                         fillcolor="rgba(214, 39, 40, 0.12)")
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10),
                         legend=dict(orientation="h", y=-0.15), hovermode="x unified")
    return _date_axes(figure)


def _level_segments(figure: go.Figure, series: pd.Series, at: float, before: float,
                    after: float) -> None:
    """Flat lines at the old level up to the breakout and the new level after it."""
    x = epoch_ms(series.index)
    if not len(x):
        return
    figure.add_scatter(x=[x.min(), at], y=[before, before], mode="lines", showlegend=False,
                       line=dict(color=BREAKOUT, width=2), hoverinfo="skip", name="level before")
    figure.add_scatter(x=[at, x.max()], y=[after, after], mode="lines", showlegend=False,
                       line=dict(color=BREAKOUT, width=2), hoverinfo="skip", name="level after")


def decomposition(frame: pd.DataFrame) -> go.Figure:
    """Observed, trend, seasonal and remainder (seasonal_adjust's columns) stacked on one
    shared time axis."""
    parts = [("observed", "observed"), ("trend", "trend"), ("seasonal", "seasonal"),
             ("resid", "remainder")]
    figure = make_subplots(rows=len(parts), cols=1, shared_xaxes=True, vertical_spacing=0.04,
                           subplot_titles=[label for _, label in parts])
    frame = thin(frame, "observed")
    x = epoch_ms(frame.index)
    for row, (column, label) in enumerate(parts, start=1):
        figure.add_scatter(x=x, y=frame[column].tolist(), mode="lines", name=label,
                           line=dict(color=METRIC if column != "resid" else ANOMALY, width=1.2),
                           row=row, col=1, showlegend=False)
    figure.update_layout(height=560, margin=dict(l=10, r=10, t=30, b=10))
    return _date_axes(figure)


HEALTH_FILL = {"ok": "#d4edda", **SEVERITY_COLOURS}


def lineage_graph(health: pd.DataFrame) -> str:
    """The datasets as a Graphviz DOT graph, each upstream pointing at what is built from it
    and each node filled with the dataset's health (st.graphviz_chart draws it)."""
    def quoted(name: str) -> str:  # a dataset name is data: never DOT syntax
        return '"' + str(name).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["digraph lineage {", "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="sans-serif"];']
    for row in health.itertuples(index=False):
        lines.append(f"  {quoted(row.dataset)} [fillcolor={quoted(HEALTH_FILL.get(row.health, '#eeeeee'))}, "
                     f"tooltip={quoted(f'{row.dataset}: {row.health}')}];")
        for upstream in row.upstream or []:
            lines.append(f"  {quoted(upstream)} -> {quoted(row.dataset)};")
    return "\n".join([*lines, "}"])

