"""Administering monitors (monitors.judge.admin): enabling, disabling and saving write the YAML and
an audit record of who changed what; a refused change writes nothing."""
from __future__ import annotations

import pytest

from monitors.config import AutomaticMonitors, load_config
from monitors.contract import Contract
from monitors.errors import Invalid, NotFound, Refused
from monitors.judge import admin
from monitors.judge.plan import MonitorSpec, plan_monitors
from store import queries

DATASET = "customer_snapshot"


def monitors(sessions, settings) -> dict[str, dict]:
    with sessions() as session:
        rows = admin.list_monitors(session, load_config(settings.config_path), DATASET)
    return {row["monitor"]: row for row in rows}


def declared(settings):
    return load_config(settings.config_path).dataset(DATASET)


def test_disabling_and_enabling_write_the_yaml_and_who_did_it(demo, sessions):
    with sessions() as session:
        version = admin.set_monitor_enabled(session, demo, DATASET, "nulls:income", False, by="alice")
    [written] = declared(demo).monitors
    assert (written.name, written.enabled) == ("nulls:income", False)
    assert monitors(sessions, demo)["nulls:income"]["state"] == "disabled"
    [change] = admin.list_config_changes(demo)
    assert (change["by"], change["dataset"], change["change"]) == ("alice", DATASET, "disabled nulls:income")
    assert change["version"].endswith(f"-> {version}")

    with sessions() as session:
        admin.set_monitor_enabled(session, demo, DATASET, "nulls:income", True, by="bob")
    assert declared(demo).monitors == []  # an untouched automatic monitor leaves no trace
    assert monitors(sessions, demo)["nulls:income"]["state"] == "enabled"
    assert [(c["by"], c["change"]) for c in admin.list_config_changes(demo)] == [
        ("bob", "enabled nulls:income"), ("alice", "disabled nulls:income")]


def test_a_freshness_monitor_switches_its_family(demo, sessions):
    with sessions() as session:
        admin.set_monitor_enabled(session, demo, DATASET, "freshness:late", False, by="alice")
    assert not declared(demo).automatic.freshness
    listed = monitors(sessions, demo)
    assert listed["freshness:missing"]["state"] == "disabled (family freshness off)"
    assert (listed["freshness:missing"]["family"], listed["level:income"]["family"],
            listed["nulls:income"]["family"]) == ("freshness", "levels", "nulls")


def test_saving_a_monitor_writes_it_and_audits_it(demo, sessions):
    edited = {"name": "volume:anomalies", "metric": "row_count", "detector": "anomalies",
              "options": {"alpha": 0.01}, "severity": "critical"}
    with sessions() as session:
        admin.save_monitor(session, demo, DATASET, edited, by="carol")
    [saved] = declared(demo).monitors
    assert (saved.name, saved.options) == ("volume:anomalies", {"alpha": 0.01})
    assert monitors(sessions, demo)["volume:anomalies"]["source"] == "automatic, tuned"
    [change] = admin.list_config_changes(demo)
    assert change["by"] == "carol" and change["change"].startswith("saved volume:anomalies")


@pytest.mark.parametrize("refused, error", [
    ({"name": "x", "metric": "row_count", "detector": "seasonal"}, Invalid),
    ({"name": "x", "metric": "row_count", "detector": "anomalies", "severity": "urgent"}, Invalid),
    ({"name": "x", "metric": "row_count", "detector": "anomalies", "colour": "red"}, Invalid),
])
def test_a_refused_save_writes_nothing(demo, sessions, refused, error):
    before = demo.config_path.read_bytes()
    with sessions() as session, pytest.raises(error) as raised:
        admin.save_monitor(session, demo, DATASET, refused, by="alice")
    assert "'x'" in str(raised.value)
    assert demo.config_path.read_bytes() == before
    assert admin.list_config_changes(demo) == []
    assert not demo.config_path.with_name(demo.config_path.name + ".partial").exists()


def test_a_change_without_a_name_or_to_an_unknown_monitor_is_refused(demo, sessions):
    before = demo.config_path.read_bytes()
    with sessions() as session:
        with pytest.raises(Refused, match="needs a name"):
            admin.set_monitor_enabled(session, demo, DATASET, "nulls:income", False, by="")
        with pytest.raises(NotFound, match="no monitor 'nope'"):
            admin.set_monitor_enabled(session, demo, DATASET, "nope", False, by="alice")
    assert demo.config_path.read_bytes() == before and admin.list_config_changes(demo) == []


def test_the_family_comes_from_the_spec_not_its_name(demo, sessions):
    with sessions() as session:
        for name in ("customer_snapshot", "model_scores"):
            found = queries.get_dataset(session, name)
            for spec in plan_monitors(found.kind, Contract.model_validate(found.contract), None):
                family = admin.family_of(spec)
                assert family in AutomaticMonitors.model_fields, spec.name
                assert spec.name.split(":")[0].startswith(family.rstrip("s")), spec.name
    # a configured monitor named like a family is not one
    assert admin.family_of(MonitorSpec("volume:mine", "metric", "anomalies", "warning",
                                       metric="row_count")) is None
