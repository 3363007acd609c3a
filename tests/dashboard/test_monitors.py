"""The monitors page in AppTest: enable / disable through the YAML, the backtest preview
before saving, noise statistics."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from monitors.config import MonitorConfig, load_config
from monitors.contract import Contract
from monitors.judge import admin
from monitors.judge.backtest import backtest
from monitors.judge.plan import plan_monitors
from monitors.lifecycle import alerts as lifecycle
from store import queries
from store.models import Alert
from tests.dashboard.apptest import open_page, plain

START, END = dt.date(2026, 5, 22), dt.date(2026, 6, 30)


def planned(sessions, settings, dataset: str) -> set[str]:
    with sessions() as session:
        found = queries.get_dataset(session, dataset)
        contract = Contract.model_validate(found.contract)
    config = load_config(settings.config_path)
    return {s.name for s in plan_monitors(found.kind, contract, config.dataset(dataset))}


def pick(app: AppTest, monitor: str, dataset: str = "customer_snapshot") -> AppTest:
    open_page(app, "monitors")
    if app.selectbox(key="monitors.pick").value != dataset:
        app.selectbox(key="monitors.pick").select(dataset).run()
    app.selectbox(key="monitors.monitor").select(monitor).run()
    assert not app.exception
    return app


def test_an_empty_store_says_how_to_begin(app):
    open_page(app, "monitors")
    assert "python -m monitors demo" in app.info[0].value


def test_configured_and_automatic_monitors_are_listed(app, demo):
    open_page(app, "monitors")
    table = app.dataframe[0].value.set_index("monitor")
    assert {"contract", "freshness:late", "volume:anomalies", "nulls:income",
            "categories:channel"} <= set(table.index)
    assert table["enabled"].all() and (table["source"] == "automatic").all()


def test_disabling_writes_the_config_and_the_next_plan_leaves_it_out(app, demo, sessions):
    assert "nulls:income" in planned(sessions, demo, "customer_snapshot")
    pick(app, "nulls:income")
    app.button(key="monitors.toggle").click().run()
    assert not app.exception
    declared = load_config(demo.config_path).dataset("customer_snapshot")
    disabled = [m for m in declared.monitors if m.name == "nulls:income"]
    assert len(disabled) == 1 and not disabled[0].enabled
    assert "nulls:income" not in planned(sessions, demo, "customer_snapshot")
    table = app.dataframe[0].value.set_index("monitor")
    assert table.loc["nulls:income", "state"] == "disabled"
    log = (demo.home / "config-changes.log").read_text()
    assert "alice\tcustomer_snapshot\tdisabled nulls:income" in log

    app.button(key="monitors.toggle").click().run()  # now labelled Enable
    declared = load_config(demo.config_path).dataset("customer_snapshot")
    # enabling an untouched automatic monitor leaves no trace in the file
    assert [m.name for m in declared.monitors] == []
    assert "nulls:income" in planned(sessions, demo, "customer_snapshot")


def test_a_freshness_monitor_switches_with_its_family(app, demo, sessions):
    pick(app, "freshness:late")
    app.button(key="monitors.toggle").click().run()
    assert not load_config(demo.config_path).dataset("customer_snapshot").automatic.freshness
    names = planned(sessions, demo, "customer_snapshot")
    assert "freshness:late" not in names and "freshness:missing" not in names
    table = app.dataframe[0].value.set_index("monitor")
    assert table.loc["freshness:missing", "state"] == "disabled (family freshness off)"


def test_the_preview_shows_what_the_backtest_returns_and_records_nothing(app, demo, sessions):
    with sessions() as session:
        alerts_before = session.scalar(select(func.count(Alert.id)))
    pick(app, "volume:anomalies")
    app.date_input(key="monitors.from").set_value(START)
    app.date_input(key="monitors.to").set_value(END)
    app.text_area(key="monitors.options").set_value(json.dumps({"alpha": 0.2}))
    app.button(key="monitors.preview").click().run()
    assert not app.exception

    edited = MonitorConfig(name="volume:anomalies", metric="row_count", detector="anomalies",
                           options={"alpha": 0.2}, severity="critical")
    with sessions() as session:
        expected = backtest(session, queries.get_dataset(session, "customer_snapshot"), edited, START, END)
    shown = app.dataframe[1].value
    assert [d.date() for d in shown["partition"]] == [a.partition for a in expected]
    assert shown["message"].tolist() == [a.message for a in expected]
    assert f"**{len(expected)} alert(s)**" in app.markdown[0].value
    marked = [t for t in json.loads(app.get("plotly_chart")[0].proto.spec)["data"]
              if t["name"] == "would alert"]
    assert len(expected) == 0 or marked
    with sessions() as session:
        assert session.scalar(select(func.count(Alert.id))) == alerts_before
    # a preview is not a save
    assert load_config(demo.config_path).dataset("customer_snapshot").monitors == []


def test_saving_needs_a_preview_of_that_very_version(app, demo, sessions):
    pick(app, "volume:anomalies")
    app.text_area(key="monitors.options").set_value(json.dumps({"alpha": 0.01}))
    app.button(key="monitors.save").click().run()
    assert "Preview the backtest of this version" in app.warning[0].value
    assert load_config(demo.config_path).dataset("customer_snapshot").monitors == []

    app.button(key="monitors.save").click().run()  # previewed now, unchanged since
    assert not app.exception
    saved = load_config(demo.config_path).dataset("customer_snapshot").monitors
    assert [(m.name, m.options, m.enabled) for m in saved] == [("volume:anomalies", {"alpha": 0.01}, True)]
    table = app.dataframe[0].value.set_index("monitor")
    assert table.loc["volume:anomalies", "source"] == "automatic, tuned"
    assert any("saved by alice" in s.value for s in app.success)


def test_an_invalid_edit_is_refused_with_the_reason(app, demo):
    pick(app, "volume:anomalies")
    app.text_area(key="monitors.options").set_value("{not json")
    app.button(key="monitors.preview").click().run()
    assert "not valid" in app.error[0].value


def test_noise_counts_alerts_per_week_and_false_positives(app, demo, sessions):
    with sessions.begin() as session:
        customers = queries.get_dataset(session, "customer_snapshot").id
        # the level shift's alerts stay open (the volume drop's resolve once redelivered corrected)
        ids = session.scalars(select(Alert.id).where(Alert.monitor == "level:products_held",
                                                     Alert.dataset_id == customers,
                                                     Alert.status != "resolved")).all()
        lifecycle.resolve(session, ids[0], by="bob", resolution="false_positive")
        if len(ids) > 1:
            lifecycle.resolve(session, ids[1], by="bob", resolution="fixed")
    open_page(app, "monitors")
    # picked by its columns: the frames above it come and go with the demo's columns
    noise = next(df.value for df in app.dataframe if "per_week" in df.value.columns).set_index("monitor")
    level = noise.loc["level:products_held"]
    assert level["per_week"] == pytest.approx(level["alerts"] / (40 / 7), abs=0.01)
    assert level["false_positive"] == 1
    assert level["false_positive_share"] == pytest.approx(1 / min(len(ids), 2))


def test_a_broken_config_file_is_named_not_overwritten(app, demo):
    text = demo.config_path.read_text().replace("format: csv", "format: xlsx", 1)
    demo.config_path.write_text(text)
    open_page(app, "monitors")
    shown = " ".join(plain(e.value) for e in app.error) + " ".join(c.value for c in app.code)
    assert "monitors.yaml:" in shown and "format" in shown
    assert demo.config_path.read_text() == text


def test_the_editor_follows_the_monitor_picked_and_previews_that_one(app, demo):
    """Issue 13 #2: picking nulls:income must put nulls:income in the form, and the preview
    must run on it (it used to stay on the first monitor)."""
    pick(app, "nulls:income")
    assert app.text_input(key="monitors.name").value == "nulls:income"
    assert app.text_input(key="monitors.metric").value == "null_fraction"
    assert app.selectbox(key="monitors.detector").value == "proportional"
    assert json.loads(app.text_area(key="monitors.options").value)["max_increase"] == 1.0
    app.button(key="monitors.preview").click().run()
    assert not app.exception
    assert "**Backtest of nulls:income**" in plain(app.markdown[0].value)
    app.selectbox(key="monitors.monitor").select("volume:anomalies").run()
    assert app.text_input(key="monitors.name").value == "volume:anomalies"


def test_an_unknown_option_is_refused_by_name_and_nothing_is_previewed_or_saved(app, demo):
    """Issue 13 #3: {"min_change": 0.3, "foo": 2.0} used to preview as 89 monitor_failed
    alerts and save; the registry refuses `foo`, listing the options anomalies takes."""
    pick(app, "volume:anomalies")
    app.text_area(key="monitors.options").set_value(json.dumps({"min_change": 0.3, "foo": 2.0}))
    app.button(key="monitors.preview").click().run()
    assert not app.exception
    [error] = [plain(e.value) for e in app.error]
    assert "foo: not an option of anomalies" in error and "min_change" in error
    assert "Backtest of" not in " ".join(m.value for m in app.markdown)
    app.button(key="monitors.save").click().run()
    app.button(key="monitors.save").click().run()
    assert load_config(demo.config_path).dataset("customer_snapshot").monitors == []


def test_columns_left_out_of_automatic_watching_are_shown_with_why(app, demo, sessions):
    pick(app, "volume:anomalies")
    skipped = app.dataframe[1].value.set_index("column")  # after the monitors table
    with sessions() as session:
        expected = admin.skipped_columns(session, load_config(demo.config_path), "customer_snapshot")
    assert sorted(skipped.index) == sorted(r["column"] for r in expected)
    assert "sensitive in the contract" in skipped.loc["customer_id", "why"]
    assert "duplicates:customer_id" in skipped.loc["customer_id", "still watched"]


def test_a_drift_reference_is_pinned_and_unpinned_from_the_page(app, demo, sessions):
    pick(app, "volume:anomalies")
    assert "No pinned reference" in " ".join(c.value for c in app.caption)
    app.selectbox(key="monitors.pin_column").select("income")  # a form: sent on submit
    app.date_input(key="monitors.pin_from").set_value(START)
    app.date_input(key="monitors.pin_to").set_value(START + dt.timedelta(days=13))
    app.button(key="monitors.pin").click().run()
    assert not app.exception
    pinned = load_config(demo.config_path).dataset("customer_snapshot").references
    assert [(r.column, r.start, r.end) for r in pinned] == [
        ("income", START, START + dt.timedelta(days=13))]
    shown = app.dataframe[2].value  # the monitors, the skipped columns, the references
    assert shown["column"].tolist() == ["income"]
    assert [d.date() if hasattr(d, "date") else d for d in shown["from"]] == [START]
    assert "pinned to" in plain(app.success[0].value)
    log = (demo.home / "config-changes.log").read_text()
    assert "alice\tcustomer_snapshot\tpinned the drift reference of income" in log

    app.selectbox(key="monitors.unpin_column").select("income").run()
    app.button(key="monitors.unpin").click().run()
    assert not app.exception
    assert load_config(demo.config_path).dataset("customer_snapshot").references == []
    assert "No pinned reference" in " ".join(c.value for c in app.caption)


def test_an_empty_reference_range_is_refused_in_one_line(app, demo):
    pick(app, "volume:anomalies")
    app.date_input(key="monitors.pin_from").set_value(START + dt.timedelta(days=5))
    app.date_input(key="monitors.pin_to").set_value(START)
    app.button(key="monitors.pin").click().run()
    assert "is after" in plain(app.error[0].value)
    assert load_config(demo.config_path).dataset("customer_snapshot") is None or \
        load_config(demo.config_path).dataset("customer_snapshot").references == []
