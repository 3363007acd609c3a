"""Gates as an orchestrator's sensor and an operator see them: a partition is held by its
own or an upstream's open critical alert (or warning, for a dataset whose config's gate
holds on warnings), released when the alert is resolved, muted or passes again; the `gate`
command's exit codes and JSON; every change in the audit trail."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from monitors.catalog import sync_datasets
from monitors.cli import main
from monitors.config import ConfigError, parse_config
from monitors.errors import Invalid, NotFound
from monitors.lifecycle.alerts import acknowledge, resolve
from monitors.lifecycle.incidents import group_incidents
from monitors.lifecycle.mutes import add_mute, expire
from monitors.pipeline.gates import gate_verdict, list_gate_changes
from tests.monitors.lineage_store import add_batch, add_lineage
from tests.monitors.signals import NOW, alerts, day, fires, passes, record

HOUR = dt.timedelta(hours=1)


def gate(sessions, dataset, partition, now=NOW):
    with sessions.begin() as session:
        return gate_verdict(session, dataset, partition, now=now)


def changes(sessions, dataset, partition=None):
    with sessions() as session:
        return list_gate_changes(session, dataset, partition)


def test_a_partition_is_held_by_its_own_critical_alert_and_only_that_partition(sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    (alert,) = alerts(sessions)

    held = gate(sessions, "customers", day(1))
    assert not held.safe and held.verdict == "held"
    assert [(a.id, a.dataset, a.monitor, a.severity) for a in held.holding] == [
        (alert["id"], "customers", "row_count_anomaly", "critical")]
    assert gate(sessions, "customers", day(0)).safe
    assert gate(sessions, "customers", day(2)).safe


def test_warnings_do_not_hold_a_partition_of_a_dataset_keeping_the_default_gate(sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="warning"),
                      fires(ids["customers"], day(1), monitor="nulls", column="age", severity="info")])
    assert gate(sessions, "customers", day(1)).safe
    assert gate(sessions, "sales", day(1)).safe


def test_an_upstream_critical_alert_holds_every_dataset_built_from_it(sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    (alert,) = alerts(sessions)

    for downstream in ("sales", "report"):  # report is built from sales, built from customers
        held = gate(sessions, downstream, day(1))
        assert not held.safe
        assert [a.id for a in held.holding] == [alert["id"]]
        assert held.holding[0].dataset == "customers"
    assert gate(sessions, "weather", day(1)).safe  # not built from it
    assert gate(sessions, "sales", day(0)).safe    # another partition


def test_a_downstream_alert_does_not_hold_its_upstream(sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["sales"], day(1), severity="critical")])
    assert gate(sessions, "customers", day(1)).safe
    assert not gate(sessions, "sales", day(1)).safe
    assert not gate(sessions, "report", day(1)).safe


def test_resolving_the_alert_releases_the_gate_and_the_audit_says_why(sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    (alert,) = alerts(sessions)
    assert not gate(sessions, "customers", day(1)).safe
    assert not gate(sessions, "sales", day(1)).safe
    assert not gate(sessions, "sales", day(1), now=NOW + HOUR).safe  # asked again: no new row

    with sessions.begin() as session:  # acknowledging is not releasing
        acknowledge(session, alert["id"], by="bo", now=NOW + HOUR)
    assert not gate(sessions, "sales", day(1), now=NOW + HOUR).safe
    with sessions.begin() as session:
        resolve(session, alert["id"], by="bo", resolution="fixed", now=NOW + 2 * HOUR)

    assert gate(sessions, "sales", day(1), now=NOW + 3 * HOUR).safe
    trail = changes(sessions, "sales", day(1))
    assert [c["verdict"] for c in trail] == ["held", "safe"]
    assert trail[0]["alert_ids"] == [alert["id"]] and f"#{alert['id']}" in trail[0]["why"]
    # recorded by the resolve itself, not by the next question
    assert trail[1]["at"] == (NOW + 2 * HOUR).isoformat()
    assert "resolved (fixed)" in trail[1]["why"]
    assert [c["verdict"] for c in changes(sessions, "customers", day(1))] == ["held", "safe"]


def test_a_partition_never_held_has_no_audit_rows(sessions):
    add_lineage(sessions)
    assert gate(sessions, "sales", day(0)).safe
    assert changes(sessions, "sales") == []


def test_muting_the_alert_releases_the_gate_and_its_end_holds_it_again(sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    assert not gate(sessions, "sales", day(1)).safe
    with sessions.begin() as session:
        mute = add_mute(session, matchers={"dataset": "customers"}, reason="known replay",
                        by="bo", ends_at=NOW + 5 * HOUR, now=NOW + HOUR)
        mute_id = mute.id

    assert gate(sessions, "sales", day(1), now=NOW + 2 * HOUR).safe
    with sessions.begin() as session:
        expire(session, mute_id, by="bo", now=NOW + 3 * HOUR)
    assert not gate(sessions, "sales", day(1), now=NOW + 4 * HOUR).safe

    trail = changes(sessions, "sales", day(1))
    assert [c["verdict"] for c in trail] == ["held", "safe", "held"]
    assert f"muted by mute {mute_id}" in trail[1]["why"]


def incident_of_two(sessions) -> None:
    """One incident on day 1: a warning on customers, its root, and the critical alert it
    caused on sales (which holds sales' gate)."""
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="warning"),
                      fires(ids["sales"], day(1), severity="critical")], now=NOW)
    with sessions.begin() as session:
        group_incidents(session, [a["id"] for a in alerts(sessions)], now=NOW)


def test_muting_an_incidents_root_releases_the_partitions_its_caused_alerts_hold(sessions):
    incident_of_two(sessions)
    assert not gate(sessions, "sales", day(1)).safe  # held by the caused, critical alert
    with sessions.begin() as session:
        add_mute(session, matchers={"dataset": "customers"}, reason="upstream replay", by="bo",
                 ends_at=NOW + 5 * HOUR, now=NOW)
    assert gate(sessions, "sales", day(1), now=NOW + HOUR).safe


def test_a_pass_on_the_same_partition_releases_the_gate(sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    assert not gate(sessions, "customers", day(1)).safe
    # the corrected batch, rerun: the monitor passes on that partition
    record(sessions, [passes(ids["customers"], day(1), severity="critical")], now=NOW + HOUR)
    assert gate(sessions, "customers", day(1), now=NOW + HOUR).safe


def test_unknown_dataset_partition_or_date_is_refused(sessions):
    add_lineage(sessions, days=2)
    with pytest.raises(NotFound, match="unknown dataset 'nope'"):
        gate(sessions, "nope", day(0))
    with pytest.raises(NotFound, match=f"no batch and no alert for partition {day(5)}"):
        gate(sessions, "sales", day(5))
    with pytest.raises(Invalid, match="not a date"):
        gate(sessions, "sales", "yesterday")


def test_a_missing_batch_with_its_alert_is_held_not_unknown(sessions):
    ids = add_lineage(sessions, days=2)
    record(sessions, [fires(ids["customers"], day(5), monitor="freshness:missing",
                            severity="critical")])
    assert not gate(sessions, "customers", day(5)).safe


def test_the_sensor_calls_it_with_the_settings_and_a_date_string(settings, sessions):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    verdict = gate_verdict(settings, "sales", day(1).isoformat(), now=NOW)
    assert not verdict.safe and verdict.holding[0].dataset == "customers"
    # its audit row was committed by the call
    assert [c["verdict"] for c in changes(sessions, "sales", day(1))] == ["held"]


def test_gate_command_exit_codes_text_and_json(settings, sessions, capsys):
    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical", value=812.0)])
    (alert,) = alerts(sessions)
    capsys.readouterr()

    assert main(["gate", "--dataset", "sales", "--date", day(0).isoformat()]) == 0
    assert "safe" in capsys.readouterr().out

    assert main(["gate", "--dataset", "sales", "--date", day(1).isoformat()]) == 1
    out = capsys.readouterr().out
    assert "held" in out and f"#{alert['id']} customers row_count_anomaly" in out

    assert main(["gate", "--dataset", "sales", "--date", day(1).isoformat(), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"] == "held" and document["safe"] is False
    assert [(a["id"], a["dataset"], a["severity"]) for a in document["holding"]] == [
        (alert["id"], "customers", "critical")]
    assert "812.0" in document["holding"][0]["message"]

    assert main(["gate", "--dataset", "sales", "--date", day(0).isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "dataset": "sales", "partition": day(0).isoformat(), "verdict": "safe", "safe": True,
        "holds_on": "critical", "holding": []}

    for argv in (["--dataset", "nope", "--date", day(0).isoformat()],
                 ["--dataset", "sales", "--date", day(9).isoformat(), "--json"]):
        assert main(["gate", *argv]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith("error: ") and captured.err.count("\n") == 1


# ---- a person's mute moves the gates at once (monitors.lifecycle.muting) -----------------

def test_adding_and_ending_a_mute_records_the_gate_change_at_that_moment(settings, sessions, capsys):
    """Through the command line: the audit trail says when the person acted, not when the
    gate was next asked; a mute over other alerts records nothing."""
    from monitors.lifecycle import muting

    ids = add_lineage(sessions)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    (alert,) = alerts(sessions)
    for dataset in ("customers", "sales", "report"):  # the alert's partition, downstream too
        assert not gate(sessions, dataset, day(1)).safe
    with sessions.begin() as session:  # covers nothing that holds a gate
        muting.add(session, matchers={"dataset": "weather"}, reason="other", by="bo",
                   ends_at=NOW + 5 * HOUR, now=NOW + HOUR)
    assert [c["verdict"] for c in changes(sessions, "sales", day(1))] == ["held"]

    # the command line's clock is the real one
    before = dt.datetime.now(dt.UTC)
    assert main(["mutes", "add", "--dataset", "customers", "--reason", "known replay",
                 "--by", "bo", "--for", "2h", "--json"]) == 0
    mute_id = json.loads(capsys.readouterr().out)["id"]
    added = dt.datetime.now(dt.UTC)
    for dataset in ("customers", "sales", "report"):
        trail = changes(sessions, dataset, day(1))
        assert [c["verdict"] for c in trail] == ["held", "safe"], dataset
        assert before <= dt.datetime.fromisoformat(trail[1]["at"]) <= added
        assert f"#{alert['id']} muted by mute {mute_id} (known replay)" in trail[1]["why"]

    assert main(["mutes", "expire", str(mute_id), "--by", "bo"]) == 0
    capsys.readouterr()
    trail = changes(sessions, "sales", day(1))
    assert [c["verdict"] for c in trail] == ["held", "safe", "held"]
    assert added <= dt.datetime.fromisoformat(trail[2]["at"]) <= dt.datetime.now(dt.UTC)
    assert trail[2]["alert_ids"] == [alert["id"]]


def test_a_mute_on_an_incidents_root_moves_the_gates_its_caused_alerts_hold(sessions):
    from monitors.lifecycle import muting

    incident_of_two(sessions)
    assert not gate(sessions, "sales", day(1)).safe
    with sessions.begin() as session:
        muting.add(session, matchers={"dataset": "customers"}, reason="upstream replay",
                   by="bo", ends_at=NOW + 5 * HOUR, now=NOW + HOUR)
    trail = changes(sessions, "sales", day(1))
    assert [(c["verdict"], c["at"]) for c in trail][-1] == ("safe", (NOW + HOUR).isoformat())


def test_a_mute_releases_held_stages_at_once_and_its_end_holds_them_again(settings, sessions):
    """The page shows them queued (due on the worker's next poll) as soon as the mute is
    stored, not after the worker's periodic look at held stages."""
    from monitors.lifecycle import muting
    from monitors.pipeline.stages import list_stages
    from tests.monitors.test_stages import TWO_STAGES, configure, plan

    ids = add_lineage(sessions)
    configure(settings, TWO_STAGES)
    record(sessions, [fires(ids["customers"], day(1), severity="critical")])
    (alert,) = alerts(sessions)
    plan(sessions, settings, ids["sales"], day(1))

    def stage_states():
        with sessions() as session:
            return [(s["state"], s["held_by"]) for s in list_stages(session, "sales", day(1))]

    assert stage_states() == [("held", alert["id"])] * 2
    with sessions.begin() as session:
        mute_id = muting.add(session, matchers={"column": "*"}, reason="known replay",
                             by="bo", ends_at=NOW + 5 * HOUR, now=NOW + HOUR).id
    assert stage_states() == [("queued", None)] * 2
    with sessions.begin() as session:
        muting.end(session, mute_id, by="bo", now=NOW + 2 * HOUR)
    assert stage_states() == [("held", alert["id"])] * 2


# sales feeds consumers and holds on warnings; customers and report keep the default
GATE_ON_WARNINGS = """
datasets:
  - {name: customers, format: csv, source: landing/customers}
  - {name: sales, format: csv, source: landing/sales, upstream: [customers],
     gate: {holds_on: warning}}
  - {name: report, format: csv, source: landing/report, upstream: [sales]}
"""


def test_a_warning_holds_the_gate_of_a_dataset_whose_config_holds_on_warnings(settings, sessions,
                                                                              capsys):
    with sessions.begin() as session:
        ids = {d.name: d.id for d in sync_datasets(session, parse_config(GATE_ON_WARNINGS),
                                                    settings.home)}
        for dataset_id in ids.values():
            add_batch(session, dataset_id, day(1))
            add_batch(session, dataset_id, day(2))
    record(sessions, [fires(ids["customers"], day(1), severity="warning"),
                      fires(ids["customers"], day(2), monitor="nulls", column="age",
                            severity="info")])
    warning = next(a for a in alerts(sessions) if a["severity"] == "warning")

    held = gate(sessions, "sales", day(1))
    assert not held.safe and held.holds_on == "warning"
    assert [(a.id, a.dataset, a.severity) for a in held.holding] == [
        (warning["id"], "customers", "warning")]
    # the datasets that say nothing hold on critical alerts only, an upstream's or not
    assert gate(sessions, "customers", day(1)).safe
    assert gate(sessions, "report", day(1)).safe
    # an info alert is below the warning gate
    assert gate(sessions, "sales", day(2)).safe

    capsys.readouterr()
    assert main(["gate", "--dataset", "sales", "--date", day(1).isoformat(), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["holds_on"] == "warning"
    assert [a["id"] for a in document["holding"]] == [warning["id"]]
    assert main(["gate", "--dataset", "sales", "--date", day(1).isoformat()]) == 1
    assert "critical and warning alerts hold it" in capsys.readouterr().out
    assert main(["gate", "--dataset", "report", "--date", day(1).isoformat()]) == 0
    assert "critical alerts hold it" in capsys.readouterr().out

    # the team relaxes the gate: the next verdict releases it, and the audit says why
    relaxed = GATE_ON_WARNINGS.replace("gate: {holds_on: warning}", "gate: {holds_on: critical}")
    with sessions.begin() as session:
        sync_datasets(session, parse_config(relaxed), settings.home)
    assert gate(sessions, "sales", day(1), now=NOW + HOUR).safe
    trail = changes(sessions, "sales", day(1))
    assert [c["verdict"] for c in trail] == ["held", "safe"]
    assert "is warning now (the gate holds on critical)" in trail[1]["why"]


@pytest.mark.parametrize("value", ["major", "Warning", "[warning]"])
def test_a_gate_severity_that_is_not_one_is_a_config_error_naming_the_key_and_line(value):
    text = GATE_ON_WARNINGS.replace("holds_on: warning", f"holds_on: {value}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "monitors.yaml")
    message = str(caught.value)
    assert message.startswith("monitors.yaml:5: datasets.1.gate.holds_on: ")
    assert "is not a severity" in message and "critical, warning, info" in message


def test_a_lasting_warning_holds_the_day_it_began_and_a_critical_one_every_day(settings, sessions):
    with sessions.begin() as session:
        ids = {d.name: d.id for d in sync_datasets(session, parse_config(GATE_ON_WARNINGS),
                                                    settings.home)}
        for dataset_id in ids.values():
            for n in range(4):
                add_batch(session, dataset_id, day(n))
    # a drift is one alert over the partitions it fires on (not a point finding)
    record(sessions, [fires(ids["customers"], day(n), monitor="drift:channel", column="channel",
                            point=False, severity="warning") for n in (1, 2, 3)])
    record(sessions, [fires(ids["sales"], day(n), monitor="contract", point=False,
                            severity="critical") for n in (2, 3)])
    drift, contract = sorted(alerts(sessions), key=lambda a: a["severity"], reverse=True)
    assert drift["occurrences"] == 3

    def held_by(n):
        return [a.id for a in gate(sessions, "sales", day(n)).holding]

    # the day the channel mix changed waits for a person; the days carrying the change don't
    assert held_by(1) == [drift["id"]]
    assert held_by(2) == held_by(3) == [contract["id"]]
    assert held_by(0) == []


def test_a_pass_on_a_later_partition_resolves_the_alert_but_the_bad_partition_stays_held(sessions):
    ids = add_lineage(sessions, days=4)
    record(sessions, [fires(ids["customers"], day(1), monitor="profile:income", column="income",
                            point=False, severity="critical")])
    # the next day's snapshot is fine: the monitor passes there and resolves the alert
    record(sessions, [passes(ids["customers"], day(2), monitor="profile:income", column="income",
                             point=False, severity="critical")], now=NOW + HOUR)
    (alert,) = alerts(sessions)
    assert alert["status"] == "resolved"
    held = gate(sessions, "sales", day(1), now=NOW + HOUR)
    assert [a.id for a in held.holding] == [alert["id"]]  # day 1's data was never fixed
    assert gate(sessions, "sales", day(2), now=NOW + HOUR).safe
    # the corrected day 1, rerun: it passes there, which releases it
    record(sessions, [passes(ids["customers"], day(1), monitor="profile:income", column="income",
                             point=False, severity="critical")], now=NOW + 2 * HOUR)
    assert gate(sessions, "sales", day(1), now=NOW + 2 * HOUR).safe
    assert "passed on" in changes(sessions, "sales", day(1))[-1]["why"]
