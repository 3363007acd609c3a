"""The datasets and model outputs pages in AppTest, on the demo's store and on an empty one.

`demo` (also used by test_monitors and test_pipeline) fills the test's store with the
demo's 40 days: landed once per backend and copied per test (a file copy on SQLite, a
template database on PostgreSQL), since landing takes ten seconds."""
from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from monitors.demo import land_demo
from monitors.settings import Settings, load_settings
from store.engine import open_store

ROOT = Path(__file__).resolve().parents[2]
DEMO_END = dt.date(2026, 6, 30)
_templates: dict[str, tuple[Path, str | None]] = {}


def _template(backend: str, request, tmp_path_factory) -> tuple[Path, str | None]:
    """The demo landed once per backend: its MONITORS_HOME, and its database on PostgreSQL."""
    if backend not in _templates:
        home = tmp_path_factory.mktemp(f"demo-{backend}") / "home"
        environ = {"MONITORS_HOME": str(home)}
        database = None
        if backend == "postgresql":
            server = request.getfixturevalue("postgres_server")
            database = f"demo_template_{len(_templates)}"
            _admin(server, f'CREATE DATABASE "{database}"')
            environ["MONITORS_DB_URL"] = f"{server}/{database}"
        settings = load_settings(environ)
        engine, sessions = open_store(settings.db_url)
        land_demo(sessions, settings, days=40, seed=1, end=DEMO_END)
        engine.dispose()
        _templates[backend] = (home, database)
    return _templates[backend]


def _admin(server: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture
def demo(settings: Settings, request, tmp_path_factory) -> Settings:
    """The test's store and MONITORS_HOME hold the demo's 40 days (request it before
    `sessions`: on PostgreSQL the test's database is replaced by a copy)."""
    backend = "postgresql" if settings.db_url.startswith("postgresql") else "sqlite"
    home, database = _template(backend, request, tmp_path_factory)
    shutil.copytree(home, settings.home, dirs_exist_ok=True)
    if database is not None:
        server, name = settings.db_url.rsplit("/", 1)
        _admin(server, f'DROP DATABASE "{name}"')
        _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{database}"')
    return settings


@pytest.fixture
def app(settings, monkeypatch) -> AppTest:
    monkeypatch.delenv("MONITORS_DASHBOARD_WORKER", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    sign_in(at, "alice")
    return at


def sign_in(at: AppTest, name: str) -> None:
    """What typing one's name in the sidebar leaves behind (dashboard.identity's keys)."""
    at.session_state["identity.name"] = name
    at.session_state["identity.input"] = name


def open_page(app: AppTest, page: str) -> AppTest:
    app.run()
    app.switch_page(f"dashboard/views/{page}.py").run()
    assert not app.exception, app.exception
    return app


def traces(chart) -> list[dict]:
    return json.loads(chart.proto.spec)["data"]


def values(trace: dict, axis: str = "y") -> list:
    """A trace's values; plotly ships numeric arrays as base64 typed arrays."""
    data = trace[axis]
    if isinstance(data, dict) and "bdata" in data:
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"]).tolist()
    return list(data)




@pytest.mark.parametrize("page", ["datasets", "model_outputs"])
def test_an_empty_store_says_how_to_begin(app, page):
    open_page(app, page)
    assert "python -m monitors demo" in app.info[0].value


def test_a_columns_metric_is_charted_over_time(app, demo):
    open_page(app, "datasets")
    assert app.selectbox(key="datasets.pick").value == "customer_snapshot"
    # the page opens on the row count: 40 days, the quarantined one a gap in the line
    row_count = values(traces(app.get("plotly_chart")[0])[0])
    assert len(row_count) == 40 and np.isnan(row_count).sum() == 1
    app.selectbox(key="datasets.column").select("income").run()
    app.selectbox(key="datasets.metric").select("null_fraction").run()
    assert not app.exception
    nulls = values(traces(app.get("plotly_chart")[0])[0])
    # the demo's null spike on income (40% instead of 5%) stands out
    assert max(nulls) > 0.3 and sorted(nulls)[len(nulls) // 2] < 0.1


def test_category_shares_are_charted_for_freq(app, demo):
    open_page(app, "datasets")
    app.selectbox(key="datasets.column").select("channel").run()
    app.selectbox(key="datasets.metric").select("freq").run()
    names = {trace["name"] for trace in traces(app.get("plotly_chart")[0])}
    assert {"branch", "online", "mobile", "phone", "partner_app"} <= names


def test_schema_history_batches_and_freshness(app, demo):
    open_page(app, "datasets")
    frames = [frame.value for frame in app.dataframe]
    datasets, quarantined, batches, contract, schema, late_or_missing = frames
    assert set(datasets["dataset"]) == {"customer_snapshot", "model_scores"}
    assert "province" in contract["name"].tolist()
    # the rename of province to region broke the contract on one day: its own row, with the reason
    broken = schema[schema["status"] == "quarantined"]
    assert len(broken) == 1 and "unexpected column(s) region" in broken["reason"].iloc[0]
    assert schema["batches"].sum() == 40
    assert "region" in quarantined["reason"].iloc[0]
    assert len(batches) == 40
    late = late_or_missing[late_or_missing["state"] == "late"]
    assert late["delay_hours"].iloc[0] == pytest.approx(16, abs=0.1)
    # on time, late, and missing: the quarantined day left no batch in force
    assert [m.value for m in app.metric] == ["38", "1", "1"]


def test_a_missing_partition_shows_on_the_freshness_tab(app, demo):
    open_page(app, "datasets")
    app.selectbox(key="datasets.pick").select("model_scores").run()
    problems = app.dataframe[-1].value
    missing = problems[problems["state"] == "missing"]
    assert len(missing) == 1
    assert [m.value for m in app.metric][2] == "1"


def test_model_outputs_show_bands_class_mix_and_drift(app, demo):
    open_page(app, "model_outputs")
    assert app.selectbox(key="model_outputs.pick").value == "model_scores"
    bands, score_drift, mix, class_drift = app.get("plotly_chart")
    names = [trace["name"] for trace in traces(bands)]
    assert {"p05-p95", "p25-p75", "median"} <= set(names)
    assert {"buy", "no_buy"} <= {trace["name"] for trace in traces(mix)}
    # the scores drift upwards near the end of the span: those partitions are marked
    marked = next(t for t in traces(score_drift) if t["name"] == "over the limit")
    assert len(values(marked, "x")) >= 1
    drift_table = app.dataframe[0].value
    assert (drift_table["partition"] >= "2026-06-20").all()
    assert drift_table["detail"].str.contains("PSI|KS").all()
    assert traces(class_drift)


def test_long_series_are_thinned_on_the_server_keeping_their_spikes():
    import pandas as pd

    from dashboard.metric_charts import MAX_POINTS, downsample

    days = pd.date_range("2000-01-01", periods=20_000, freq="D")
    values = np.sin(np.arange(20_000) / 50.0)
    values[12_345], values[777] = 40.0, -40.0
    thinned = downsample(pd.DataFrame({"partition": days, "value": values}))
    assert len(thinned) <= MAX_POINTS
    assert thinned["value"].max() == 40.0 and thinned["value"].min() == -40.0
    assert thinned["partition"].is_monotonic_increasing
