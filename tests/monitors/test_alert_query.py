"""One alert query serves `alerts list` and the dashboard: filters, date bounds, mutes and
paging are all in SQL, and give what matching every alert in Python would give."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from monitors.cli import alerts as cli_alerts
from monitors.lifecycle.alerts import alert_page, alert_summary, list_alerts
from monitors.lifecycle.mutes import active_mutes, add_mute
from store.models import Alert, Dataset
from tests.monitors.signals import NOW, day, fires, record, run_cli

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def store(sessions, sales):
    """Alerts over nine partitions, two datasets, table-level and column alerts, seen at
    different times; mutes exact, glob, catch-all, pending and expired."""
    with sessions() as session:
        customers = session.scalar(select(Dataset.id).where(Dataset.name == "customers"))
    for n in range(9):
        record(sessions, [
            fires(sales, day(n), severity="critical" if n % 3 == 0 else "warning"),
            fires(sales, day(n), monitor="nulls", column="amount" if n % 2 else "age"),
            fires(customers, day(n), monitor="nulls", column="income" if n % 2 else "age"),
        ], now=NOW + n * HOUR)
    with sessions.begin() as session:
        for matchers, starts in (({"column": "am*"}, None),                 # glob on columns
                                 ({"dataset": "customers", "column": "age"}, None),  # exact
                                 ({"monitor": "row_count_anomaly", "column": "*"}, None),
                                 ({"dataset": "sales"}, NOW + 20 * HOUR)):  # pending
            add_mute(session, matchers=matchers, reason="test", by="ana", starts_at=starts,
                     ends_at=NOW + 30 * HOUR, now=NOW)
    return sessions


def _reference(sessions, now, *, since=None, until=None, muted=None, statuses=None):
    """Every alert judged in Python, one by one, as before the query existed."""
    with sessions() as session:
        mutes = active_mutes(session, now)
        rows = session.execute(select(Alert, Dataset.name).join(Dataset)
                               .order_by(Alert.last_seen_at.desc(), Alert.id.desc())).all()
        documents = [alert_summary(alert, name, mutes, now) for alert, name in rows]
    return [(d["id"], d["mute_id"]) for d in documents
            if (since is None or d["partition"] >= since.isoformat())
            and (until is None or d["partition"] <= until.isoformat())
            and (muted is None or d["muted"] == muted)
            and (statuses is None or d["status"] in statuses)]


@pytest.mark.parametrize("muted", [None, False, True])
def test_the_query_matches_mutes_as_the_python_rule_does(store, muted):
    now = NOW + 10 * HOUR
    with store() as session:
        page = alert_page(session, muted=muted, now=now)
    expected = _reference(store, now, muted=muted)
    assert [(a["id"], a["mute_id"]) for a in page.alerts] == expected
    assert page.total == len(expected)
    if muted is None:  # the store really holds loud and muted alerts of each kind
        covering = {mute_id for _, mute_id in expected}
        assert len(covering) == 4 and None in covering  # three active mutes, and loud ones


def test_partition_bounds_include_both_days(store):
    with store() as session:
        listed = list_alerts(session, since=day(2), until=day(4), now=NOW)
    assert sorted({a["partition"] for a in listed}) == [day(n).isoformat() for n in (2, 3, 4)]
    assert [(a["id"], a["mute_id"]) for a in listed] == _reference(store, NOW, since=day(2),
                                                                   until=day(4))


def test_cli_pages_continue_each_other_and_match_the_query(store, settings, capsys,
                                                          monkeypatch):
    now = NOW + 10 * HOUR  # three mutes active
    monkeypatch.setattr(cli_alerts, "_now", lambda: now)
    bounds = ("--from", day(1).isoformat(), "--to", day(7).isoformat())
    expected = [i for i, _ in _reference(store, now, since=day(1), until=day(7), muted=False)]
    assert 6 < len(expected) < len(_reference(store, now, since=day(1), until=day(7)))
    capsys.readouterr()
    assert run_cli(settings, store, "alerts", "list", "--unmuted", *bounds, "--json") == 0
    assert [a["id"] for a in json.loads(capsys.readouterr().out)] == expected

    pages = []
    for offset in range(0, len(expected) + 3, 3):
        assert run_cli(settings, store, "alerts", "list", "--unmuted", *bounds, "--limit", "3",
                       "--offset", str(offset), "--json") == 0
        pages.append([a["id"] for a in json.loads(capsys.readouterr().out)])
    ids = [i for page in pages for i in page]
    assert ids == expected and len(set(ids)) == len(ids)  # no overlap, no gap
    assert len(pages[0]) == 3 and pages[-1] == []

    # the dashboard's call: the same pages, and the total over all of them
    with store() as session:
        first = alert_page(session, since=day(1), until=day(7), muted=False, limit=3, now=now)
        second = alert_page(session, since=day(1), until=day(7), muted=False, limit=3,
                            offset=3, now=now)
    assert first.total == second.total == len(expected)
    assert [a["id"] for a in first.alerts] == pages[0]
    assert [a["id"] for a in second.alerts] == pages[1]


def test_the_listed_fields_are_designs(store, settings, capsys):
    capsys.readouterr()
    assert run_cli(settings, store, "alerts", "list", "--limit", "1", "--json") == 0
    [alert] = json.loads(capsys.readouterr().out)
    assert {"id", "dataset", "column", "monitor", "detector", "severity", "status", "muted",
            "partition", "value", "expected", "lower", "upper", "message", "occurrences",
            "first_seen_at", "last_seen_at"} <= set(alert)
