"""Mutes: refused when incomplete, quiet while active, loud again by themselves."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from monitors.lifecycle.mutes import (
    MAX_MUTE,
    MuteState,
    active_mutes,
    add_mute,
    expire,
    is_muted,
    list_mutes,
    mute_state,
    preview,
)
from store.models import AlertEvent, MuteRule
from tests.monitors.signals import NOW, alerts, day, fires, passes, record, run_cli

# matchers are checked against the datasets the store knows
pytestmark = pytest.mark.usefixtures("sales")

HOUR = dt.timedelta(hours=1)


def mute(sessions, *, now=NOW, **overrides):
    options = dict(matchers={"dataset": "sales", "column": "income*"}, reason="vendor reload",
                   by="ana", ends_at=now + 2 * HOUR, now=now)
    options.update(overrides)
    with sessions.begin() as session:
        return add_mute(session, **options).id


@pytest.mark.parametrize("overrides, message", [
    (dict(ends_at=None), "needs an end time"),
    (dict(ends_at=NOW - HOUR), "is not after the start"),
    (dict(starts_at=NOW + 3 * HOUR), "is not after the start"),
    (dict(ends_at=NOW + MAX_MUTE + HOUR), "at most 30 days"),
    (dict(matchers={}), "at least one matcher"),
    (dict(matchers={"column": "  "}), "at least one matcher"),
    (dict(matchers={"dataset": "slaes"}), "unknown dataset: dataset 'slaes' matches no dataset"),
    (dict(matchers={"dataset": "x*"}), "pattern 'x\\*' matches no dataset"),
    (dict(matchers={"severity": "urgent"}), "severity 'urgent' matches none"),
    (dict(matchers={"table": "sales"}), "unknown matcher table"),
    (dict(reason=""), "needs a reason"),
    (dict(by=None), "needs an author"),
    (dict(ends_at=dt.datetime(2026, 11, 24, 9, 0)), "has no time zone"),
])
def test_an_incomplete_mute_is_refused_with_a_reason_and_nothing_is_stored(sessions, overrides, message):
    with pytest.raises(ValueError, match=message):
        mute(sessions, **overrides)
    with sessions() as session:
        assert session.scalar(select(func.count(MuteRule.id))) == 0


def test_the_state_is_derived_from_the_times(sessions):
    mute_id = mute(sessions, starts_at=NOW + HOUR, ends_at=NOW + 3 * HOUR)
    with sessions() as session:
        rule = session.get(MuteRule, mute_id)
        assert [mute_state(rule, NOW + h * HOUR) for h in (0, 1, 2, 3, 4)] == [
            MuteState.pending, MuteState.active, MuteState.active, MuteState.expired,
            MuteState.expired]
        assert [m.id for m in active_mutes(session, NOW + 2 * HOUR)] == [mute_id]
        assert active_mutes(session, NOW) == []


@pytest.mark.parametrize("fields, muted", [
    ({"dataset": "sales", "column": "income_band", "severity": "warning"}, True),
    ({"dataset": "sales", "column": "income", "severity": "critical"}, True),
    ({"dataset": "sales", "column": "age", "severity": "warning"}, False),
    ({"dataset": "sales", "column": None, "severity": "warning"}, False),  # table level
    ({"dataset": "customers", "column": "income_band", "severity": "warning"}, False),
])
def test_matchers_are_exact_values_or_globs(sessions, fields, muted):
    mute(sessions)
    with sessions() as session:
        assert is_muted(fields, active_mutes(session, NOW), NOW) is muted


def test_a_star_column_matcher_covers_table_level_alerts_too(sessions):
    mute(sessions, matchers={"dataset": "sales", "column": "*"})
    with sessions() as session:
        assert is_muted({"dataset": "sales", "column": None}, active_mutes(session, NOW), NOW)


def test_a_muted_alert_is_stored_and_visible_then_loud_again_when_the_mute_ends(sessions, sales):
    mute(sessions, ends_at=NOW + 2 * HOUR)

    done = record(sessions, [fires(sales, day(0), monitor="nulls", column="income_band"),
                             fires(sales, day(0), monitor="nulls", column="age")])

    listed = {a["column"]: a for a in alerts(sessions, now=NOW + HOUR)}
    income = listed["income_band"]
    assert done.muted == [income["id"]] and len(done.new) == 2
    assert income["muted"] is True and listed["age"]["muted"] is False
    assert [a["column"] for a in alerts(sessions, include_muted=False, now=NOW + HOUR)] == ["age"]
    with sessions() as session:
        kinds = [e.kind for e in session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == income["id"])).all()]
    assert kinds == ["opened", "muted"]

    after = {a["column"]: a for a in alerts(sessions, now=NOW + 2 * HOUR)}
    assert after["income_band"]["muted"] is False


def test_expiring_early_makes_the_alerts_loud_at_once(sessions, sales):
    mute_id = mute(sessions, ends_at=NOW + 8 * HOUR)
    record(sessions, [fires(sales, day(0), monitor="nulls", column="income")])
    assert alerts(sessions, now=NOW + HOUR)[0]["muted"] is True

    with sessions.begin() as session:
        expire(session, mute_id, by="bo", now=NOW + HOUR)

    assert alerts(sessions, now=NOW + HOUR)[0]["muted"] is False
    with sessions() as session:
        [listed] = list_mutes(session, NOW + HOUR)
        assert (listed["state"], listed["expired_by"]) == ("expired", "bo")
        assert listed["ends_at"] == (NOW + HOUR).isoformat()
        with pytest.raises(ValueError, match=f"mute {mute_id} already expired"):
            expire(session, mute_id, by="bo", now=NOW + 2 * HOUR)
        with pytest.raises(ValueError, match="no mute with id 99"):
            expire(session, 99, by="bo", now=NOW)


def test_expiring_a_pending_mute_does_not_leave_it_pending(sessions):
    mute_id = mute(sessions, starts_at=NOW + 2 * HOUR, ends_at=NOW + 4 * HOUR)
    with sessions.begin() as session:
        expire(session, mute_id, by="bo", now=NOW)
    with sessions() as session:
        assert mute_state(session.get(MuteRule, mute_id), NOW + 3 * HOUR) is MuteState.expired


def test_preview_lists_the_open_alerts_a_mute_would_cover(sessions, sales):
    record(sessions, [fires(sales, day(0), monitor="nulls", column="income"),
                      fires(sales, day(0), monitor="nulls", column="age"),
                      fires(sales, day(1), monitor="nulls", column="income_band"),
                      fires(sales, day(1), monitor="nulls", column="income")])
    record(sessions, [passes(sales, day(1), monitor="nulls", column="income")],
           now=NOW + HOUR)  # resolved: nothing left to cover
    with sessions() as session:
        covered = preview(session, {"column": "income*"}, NOW)
    assert sorted((a["column"], a["partition"]) for a in covered) == [
        ("income", day(0).isoformat()), ("income_band", day(1).isoformat())]


# ---- the command line -------------------------------------------------------------------

def test_the_cli_adds_lists_and_expires_mutes(settings, sessions, sales, capsys):
    record(sessions, [fires(sales, day(0), monitor="nulls", column="income")])
    capsys.readouterr()

    assert run_cli(settings, sessions, "mutes", "add", "--by", "ana", "--reason", "reload",
                   "--for", "2h", "--dataset", "sales", "--column", "income*", "--json") == 0
    added = json.loads(capsys.readouterr().out)
    assert added["state"] == "active" and added["matchers"] == {"dataset": "sales", "column": "income*"}
    assert len(added["covers"]) == 1

    assert run_cli(settings, sessions, "mutes", "list", "--json") == 0
    assert [m["state"] for m in json.loads(capsys.readouterr().out)] == ["active"]

    assert run_cli(settings, sessions, "mutes", "expire", str(added["id"]), "--by", "bo") == 0
    capsys.readouterr()
    assert run_cli(settings, sessions, "mutes", "list", "--state", "expired", "--json") == 0
    assert [m["id"] for m in json.loads(capsys.readouterr().out)] == [added["id"]]


@pytest.mark.parametrize("argv, message", [
    (("--dataset", "sales"), "needs an end time"),
    (("--for", "2h"), "at least one matcher"),
    (("--for", "40d", "--dataset", "sales"), "at most 30 days"),
    (("--for", "1h", "--dataset", "nope"), "unknown dataset"),
])
def test_the_cli_refuses_a_bad_mute_on_stderr_and_stores_nothing(settings, sessions, capsys, argv, message):
    code = run_cli(settings, sessions, "mutes", "add", "--by", "ana", "--reason", "r", *argv)
    captured = capsys.readouterr()
    assert code == 2 and message in captured.err and captured.out == ""
    with sessions() as session:
        assert session.scalar(select(func.count(MuteRule.id))) == 0
