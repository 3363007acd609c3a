"""A legitimate, permanent change is one alert and one message, and once someone accepts it
as the new normal the monitors of that metric judge against the history after it."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from monitors.config import load_config
from monitors.judge.backtest import backtest, find_monitor
from monitors.judge.baselines import accept
from monitors.lifecycle.alerts import get_alert, list_alerts
from store.models import Alert, Baseline
from tests.monitors import steps
from tests.monitors.signals import alerts, fires, record, run_cli
from tests.monitors.signals import day as signal_day
from tests.monitors.test_notify import RecordingSender

BASELINE_DAYS = 56
STEP_DAYS = 20
STEP = steps.START + dt.timedelta(days=BASELINE_DAYS)


def day(n: int) -> dt.date:
    return steps.START + dt.timedelta(days=n)


def land_history(settings, sessions, days: int, step_at: int | None = BASELINE_DAYS) -> None:
    """The quiet weeks before the step, delivered on time and backfilled in one run."""
    steps.write_config(settings)
    for n in range(days):
        steps.deliver(settings.home, day(n), steps.rows_on(n, step_at))
    steps.run(sessions, settings, day(0), day(days - 1), trigger="backfill",
              now=steps.live_morning(day(days - 1)))


def live_days(settings, sessions, first: int, last: int, sender, step_at=BASELINE_DAYS) -> None:
    """Each day's delivery and its scheduled run, the morning after, notifying."""
    for n in range(first, last + 1):
        steps.deliver(settings.home, day(n), steps.rows_on(n, step_at))
        steps.run(sessions, settings, day(n), day(n), now=steps.live_morning(day(n)),
                  sender=sender, notify=True)


def alerts_since(sessions, partition: dt.date) -> list[dict]:
    with sessions() as session:
        return [a for a in list_alerts(session, now=steps.live_morning(day(200)))
                if dt.date.fromisoformat(a["partition"]) >= partition]


def test_a_permanent_step_is_one_change_one_message(settings, sessions):
    land_history(settings, sessions, BASELINE_DAYS)
    sender = RecordingSender()
    live_days(settings, sessions, BASELINE_DAYS, BASELINE_DAYS + STEP_DAYS - 1, sender)
    raised = alerts_since(sessions, STEP)
    print(f"\n+60% step over {STEP_DAYS} days: {len(raised)} alert(s), "
          f"{len(sender.posts)} notification(s): "
          + ", ".join(f"{a['monitor']}@{a['partition']}x{a['occurrences']}" for a in raised))
    assert len(raised) <= 2
    assert len(sender.posts) == 1

    # folding is a rule of the lifecycle, not of the order of events: a rerun of the whole
    # change replays to the same alerts
    def state():
        with sessions() as session:
            return [(a.id, a.fingerprint, a.status, a.occurrences, a.message)
                    for a in session.scalars(select(Alert).order_by(Alert.id))]
    before = state()
    steps.run(sessions, settings, STEP, day(BASELINE_DAYS + STEP_DAYS - 1), trigger="backfill",
              now=steps.live_morning(day(BASELINE_DAYS + STEP_DAYS)))
    assert state() == before


def change_alert(sessions) -> dict:
    raised = alerts_since(sessions, STEP)
    assert len(raised) == 1, raised
    return raised[0]


def test_after_accept_the_new_level_raises_nothing_and_undo_brings_it_back(settings, sessions,
                                                                          capsys):
    land_history(settings, sessions, BASELINE_DAYS)
    sender = RecordingSender()
    live_days(settings, sessions, BASELINE_DAYS, BASELINE_DAYS + 9, sender)
    alert = change_alert(sessions)
    assert run_cli(settings, sessions, "alerts", "accept", str(alert["id"]), "--by", "ana",
                   "--note", "new warehouse online") == 0
    assert f"judged from partition {STEP}" in capsys.readouterr().out
    with sessions() as session:
        accepted = get_alert(session, alert["id"], now=steps.live_morning(day(200)))
    assert (accepted["status"], accepted["resolution"]) == ("resolved", "expected")
    assert "ana" in [e["by"] for e in accepted["events"]]

    after = RecordingSender()
    live_days(settings, sessions, BASELINE_DAYS + 10, BASELINE_DAYS + STEP_DAYS - 1, after)
    assert alerts_since(sessions, STEP) == [{**change_alert(sessions)}]
    assert change_alert(sessions)["status"] == "resolved"  # not reopened for the accepted level
    assert after.posts == []

    # undo: the alert is open again and the next run judges on the whole history
    assert run_cli(settings, sessions, "alerts", "unaccept", str(alert["id"]), "--by", "ana") == 0
    steps.run(sessions, settings, day(BASELINE_DAYS + STEP_DAYS - 1),
              day(BASELINE_DAYS + STEP_DAYS - 1), trigger="manual",
              now=steps.live_morning(day(BASELINE_DAYS + STEP_DAYS)))
    again = change_alert(sessions)
    assert again["id"] == alert["id"] and again["status"] == "open"


def test_a_backtest_honours_the_accepted_baseline(settings, sessions):
    land_history(settings, sessions, BASELINE_DAYS + STEP_DAYS)
    config = load_config(settings.config_path)
    with sessions.begin() as session:
        dataset, spec = find_monitor(session, config, "volume:anomalies", steps.NAME)
        before = backtest(session, dataset, spec, STEP, day(BASELINE_DAYS + STEP_DAYS - 1))
        alert = session.scalar(select(Alert).where(Alert.monitor == "volume:breakouts"))
        accept(session, alert.id, by="ana", note="new warehouse")
    with sessions() as session:
        after = backtest(session, dataset, spec, STEP, day(BASELINE_DAYS + STEP_DAYS - 1))
    assert len(before) >= 3 and after == []


@pytest.mark.parametrize("monitor", ["contract", "freshness:late"])
def test_only_a_change_of_a_metric_can_be_accepted(sessions, sales, settings, monitor, capsys):
    record(sessions, [fires(sales, signal_day(0), monitor=monitor, detector=monitor.split(":")[0],
                            point=False)])
    alert_id = alerts(sessions)[0]["id"]
    assert run_cli(settings, sessions, "alerts", "accept", str(alert_id), "--by", "ana",
                   "--note", "fine") == 2
    assert "only level changes, anomalies and drift" in capsys.readouterr().err
    assert alerts(sessions)[0]["status"] == "open"
    with sessions() as session:
        assert session.scalars(select(Baseline)).all() == []
