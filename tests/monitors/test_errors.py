"""Refusals are named (monitors.errors): a page or a command catches "not found", "refused"
or "invalid" rather than every ValueError, and the older names still work."""
from __future__ import annotations

import datetime as dt

import pytest

from monitors.catalog import UnknownDataset, find_dataset
from monitors.config import ConfigError, parse_config
from monitors.errors import Invalid, NotFound, Refused
from monitors.judge.backtest import backtest
from monitors.lifecycle.alerts import AlertChanged, acknowledge, get_alert, resolve
from monitors.lifecycle.mutes import add_mute, expire
from monitors.pipeline import queue
from tests.monitors.signals import NOW, alerts, day, fires, record, run_cli


def test_the_older_names_are_members_of_the_hierarchy():
    assert issubclass(UnknownDataset, NotFound) and issubclass(UnknownDataset, LookupError)
    assert issubclass(AlertChanged, Refused) and issubclass(ConfigError, Invalid)
    for named in (NotFound, Refused, Invalid):
        assert issubclass(named, ValueError)  # callers written before the hierarchy


def test_what_does_not_exist_is_not_found(sessions, sales):
    with sessions.begin() as session:
        with pytest.raises(NotFound, match="no alert with id 999"):
            get_alert(session, 999, now=NOW)
        with pytest.raises(NotFound, match="no alert with id 999"):
            acknowledge(session, 999, by="ana", now=NOW)
        with pytest.raises(NotFound, match="no mute with id 99"):
            expire(session, 99, by="ana", now=NOW)
        with pytest.raises(NotFound, match="no run 999"):
            queue.cancel(session, 999, by="ana")
        with pytest.raises(NotFound, match="unknown dataset 'nope'"):
            find_dataset(session, "nope")


def test_a_state_that_forbids_the_action_is_refused(sessions, sales):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions.begin() as session:
        resolve(session, alert["id"], by="ana", resolution="fixed", now=NOW)
    with sessions.begin() as session:
        with pytest.raises(Refused, match="already resolved"):
            resolve(session, alert["id"], by="bo", resolution="fixed", now=NOW)
        with pytest.raises(Refused, match="nothing to acknowledge"):
            acknowledge(session, alert["id"], by="bo", now=NOW)
        with pytest.raises(Refused, match="since you loaded it"):
            acknowledge(session, alert["id"], by="bo", now=NOW, seen="open")


def test_wrong_input_is_invalid(sessions, sales):
    record(sessions, [fires(sales, day(0))])
    [alert] = alerts(sessions)
    with sessions.begin() as session:
        with pytest.raises(Invalid, match="unknown resolution 'meh'"):
            resolve(session, alert["id"], by="ana", resolution="meh", now=NOW)
        with pytest.raises(Invalid, match="needs a reason"):
            add_mute(session, matchers={"dataset": "sales"}, reason=" ", by="ana",
                     ends_at=NOW + dt.timedelta(hours=1), now=NOW)
        with pytest.raises(Invalid, match="the range is empty"):
            backtest(session, find_dataset(session, "sales"), object(), day(2), day(1))
    with pytest.raises(Invalid, match="not valid YAML"):
        parse_config("datasets: [", "monitors.yaml")
    with pytest.raises(Invalid, match="unknown status 'closed'"):
        alerts(sessions, status="closed")


@pytest.mark.parametrize("argv, message", [
    (("alerts", "show", "42"), "error: no alert with id 42"),                   # not found
    (("alerts", "ack", "1", "--by", " "),                                       # refused
     "error: every action on an alert needs a name"),
    (("mutes", "add", "--by", "ana", "--reason", "r", "--dataset", "sales"),    # invalid
     "error: a mute needs an end time"),
])
def test_the_cli_answers_each_kind_with_one_line_and_exit_2(settings, sessions, sales, capsys,
                                                            argv, message):
    record(sessions, [fires(sales, day(0))])
    capsys.readouterr()
    assert run_cli(settings, sessions, *argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert captured.out == ""
