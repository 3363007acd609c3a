"""Notifications as the on-call channel sees them: one summary per run, nothing for
history or muted alerts, no repeats, and a dead endpoint that never breaks a run."""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from monitors.config import ConfigError, parse_config
from monitors.lifecycle.mutes import add_mute
from monitors.lifecycle.notify import (
    HttpSender,
    NotifyConfig,
    Route,
    notify_config_from,
    notify_run,
)
from monitors.notifications import NotificationsConfig
from store.models import Alert, AlertEvent
from tests.monitors.signals import NOW, day, fires, passes, record

HOOK = "https://hooks.example.com/services/T01/B02/s3cr3t-token"
FAST = dict(backoff=dt.timedelta(milliseconds=5))
HOUR = dt.timedelta(hours=1)


class RecordingSender:
    """The fake: remembers every post, and fails the first `failures` ones."""

    def __init__(self, failures: int = 0):
        self.posts: list[tuple[str, dict]] = []
        self.calls = 0
        self.failures = failures

    def post(self, url: str, payload: dict) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("connection reset by peer")
        self.posts.append((url, payload))


def notify(sessions, recorded, *, sender, now=NOW, backfill=False, config=None, dataset="sales"):
    config = config or NotifyConfig(routes=[Route(HOOK)], **FAST)
    with sessions.begin() as session:
        return notify_run(session, dataset=dataset, recorded=recorded, backfill=backfill,
                          now=now, config=config, sender=sender)


def test_one_message_per_run_sums_up_the_new_alerts(sessions, sales):
    record(sessions, [fires(sales, day(0), monitor="amount_breakout", point=False)])
    run = record(sessions, [fires(sales, day(1), severity="critical", column="amount"),
                            fires(sales, day(1), monitor="nulls", column="age"),
                            fires(sales, day(1), monitor="amount_breakout", point=False)],
                 now=NOW + HOUR)
    sender = RecordingSender()

    outcome = notify(sessions, run, sender=sender, now=NOW + HOUR)

    [(url, payload)] = sender.posts
    assert url == HOOK and sorted(outcome.notified) == sorted(run.new)
    assert payload["text"].startswith("sales: 2 new alerts (1 critical, 1 warning)")
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section"]
    assert len(sections) == 2 and sections[0].startswith("*critical* `amount`")
    assert "amount_breakout" not in payload["text"]  # an update is not news


def test_nothing_is_sent_for_backfilled_history(sessions, sales):
    run = record(sessions, [fires(sales, day(n)) for n in range(5)])
    sender = RecordingSender()

    outcome = notify(sessions, run, sender=sender, backfill=True)

    assert sender.calls == 0 and set(outcome.skipped.values()) == {"backfill"}


def test_a_muted_alert_notifies_nobody_and_after_the_mute_a_new_one_does(sessions, sales):
    with sessions.begin() as session:
        add_mute(session, matchers={"dataset": "sales"}, reason="migration", by="ana",
                 ends_at=NOW + 2 * HOUR, now=NOW)
    sender = RecordingSender()

    during = record(sessions, [fires(sales, day(0))])
    quiet = notify(sessions, during, sender=sender)
    after = record(sessions, [fires(sales, day(1))], now=NOW + 3 * HOUR)
    loud = notify(sessions, after, sender=sender, now=NOW + 3 * HOUR)

    assert quiet.skipped == {during.new[0]: "muted"} and quiet.sent == []
    assert loud.notified == after.new and len(sender.posts) == 1
    assert day(1).isoformat() in sender.posts[0][1]["text"]


def test_a_flapping_alert_is_not_repeated_within_the_repeat_interval(sessions, sales):
    sender = RecordingSender()
    config = NotifyConfig(routes=[Route(HOOK)], repeat_interval=4 * HOUR, **FAST)

    def flap(at: dt.datetime):
        record(sessions, [passes(sales, day(0))], now=at - dt.timedelta(minutes=30))
        return notify(sessions, record(sessions, [fires(sales, day(0), value=500)], now=at),
                      sender=sender, now=at, config=config)

    notify(sessions, record(sessions, [fires(sales, day(0))]), sender=sender, config=config)
    soon = flap(NOW + HOUR)
    later = flap(NOW + 5 * HOUR)

    assert len(sender.posts) == 2
    assert list(soon.skipped.values()) == ["repeat interval"]
    assert "(reopened)" in sender.posts[1][1]["blocks"][1]["text"]["text"] and later.notified


def test_alerts_are_routed_by_severity_and_owner(sessions, sales):
    pager, growth, everyone = (f"https://hooks.example.com/{n}" for n in ("pager", "growth", "all"))
    config = NotifyConfig(routes=[Route(pager, severities=("critical",)),
                                  Route(growth, owners=("growth",)), Route(everyone)], **FAST)
    run = record(sessions, [fires(sales, day(0), severity="critical", monitor="volume"),
                            fires(sales, day(0), owner="growth", monitor="nulls", column="age"),
                            fires(sales, day(0), severity="info", monitor="drift")])
    sender = RecordingSender()

    notify(sessions, run, sender=sender, config=config)

    monitors = {url: sorted(re.match(r"\*\w+\* (?:`\w+` )?(\w+) on", b["text"]["text"])[1]
                            for b in payload["blocks"] if b["type"] == "section")
                for url, payload in sender.posts}
    assert monitors == {pager: ["volume"], growth: ["nulls"], everyone: ["drift", "nulls", "volume"]}


def test_an_alert_no_route_wants_is_skipped_with_the_reason(sessions, sales):
    config = NotifyConfig(routes=[Route(HOOK, severities=("critical",))], **FAST)
    run = record(sessions, [fires(sales, day(0), severity="info")])
    sender = RecordingSender()

    outcome = notify(sessions, run, sender=sender, config=config)

    assert sender.calls == 0 and outcome.skipped == {run.new[0]: "no route"}


def test_a_flaky_endpoint_is_retried_with_backoff(sessions, sales, caplog):
    run = record(sessions, [fires(sales, day(0))])
    sender = RecordingSender(failures=2)

    with caplog.at_level(logging.WARNING, logger="monitors.lifecycle.notify"):
        outcome = notify(sessions, run, sender=sender)

    assert sender.calls == 3 and outcome.notified == run.new
    assert caplog.text.count("retrying") == 2
    assert "hooks.example.com" in caplog.text and "s3cr3t" not in caplog.text


# ---- a real HTTP endpoint ---------------------------------------------------------------

class Hook(BaseHTTPRequestHandler):
    statuses: list[int] = []
    received: list[tuple[str, dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, body))
        status = type(self).statuses.pop(0) if type(self).statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def endpoint():
    Hook.statuses, Hook.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_real_endpoint_failing_once_gets_the_message_on_the_retry(sessions, sales, endpoint):
    Hook.statuses = [500]
    url = f"{endpoint}/services/T01/B02/s3cr3t-token"
    run = record(sessions, [fires(sales, day(0))])

    outcome = notify(sessions, run, sender=HttpSender(timeout=5),
                     config=NotifyConfig(routes=[Route(url)], **FAST))

    assert [path for path, _ in Hook.received] == ["/services/T01/B02/s3cr3t-token"] * 2
    assert {"text", "blocks"} <= set(Hook.received[-1][1])
    assert outcome.notified == run.new and outcome.sent == [endpoint.removeprefix("http://")]


def test_a_rejected_message_is_not_retried(sessions, sales, endpoint, caplog):
    Hook.statuses = [404]
    run = record(sessions, [fires(sales, day(0))])

    with caplog.at_level(logging.WARNING, logger="monitors.lifecycle.notify"):
        outcome = notify(sessions, run, sender=HttpSender(timeout=5),
                         config=NotifyConfig(routes=[Route(f"{endpoint}/gone")], **FAST))

    assert len(Hook.received) == 1 and outcome.notified == []
    assert "not retrying" in caplog.text


def test_a_dead_endpoint_leaves_the_run_alone_and_is_logged_without_its_secret(sessions, sales, caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T01/B02/s3cr3t-token"
    run = record(sessions, [fires(sales, day(0))])

    with caplog.at_level(logging.WARNING, logger="monitors.lifecycle.notify"):
        outcome = notify(sessions, run, sender=HttpSender(timeout=2),
                         config=NotifyConfig(routes=[Route(url)], attempts=3, **FAST))

    assert outcome.failed == [f"127.0.0.1:{port}"] and outcome.notified == []
    assert outcome.skipped == {run.new[0]: "delivery failed"}
    assert "failed 3 times, giving up" in caplog.text and f"127.0.0.1:{port}" in caplog.text
    assert "s3cr3t" not in caplog.text and "/services/" not in caplog.text
    with sessions() as session:
        assert session.get(Alert, run.new[0]).notified_at is None


# ---- configuration ----------------------------------------------------------------------

def test_routes_come_from_plain_config_with_secrets_from_the_environment(caplog):
    data = {"repeat_interval": "2h",
            "routes": [{"url_env": "ONCALL_HOOK", "severities": ["critical"]},
                       {"url_env": "UNSET_HOOK"},
                       {"url": "https://hooks.example.com/growth", "owners": "growth"}]}

    with caplog.at_level(logging.WARNING, logger="monitors.lifecycle.notify"):
        config = notify_config_from(data, {"ONCALL_HOOK": HOOK})

    assert config.repeat_interval == 2 * HOUR
    assert [(r.host, r.severities, r.owners) for r in config.routes] == [
        ("hooks.example.com", ("critical",), None), ("hooks.example.com", None, ("growth",))]
    assert "UNSET_HOOK is not set" in caplog.text
    assert "s3cr3t" not in repr(config)


@pytest.mark.parametrize("data, message", [
    ({"routes": [{"url": HOOK, "url_env": "X"}]}, "give url or url_env"),
    ({"routes": [{"url": HOOK, "severity": "critical"}]}, "unknown key severity"),
    ({"routes": [{"url": HOOK, "severities": ["urgent"]}]}, "unknown severity urgent"),
    ({"routes": [{"url": "hooks.example.com/x"}]}, "not an http"),
    ({"repeat_interval": "4 hours"}, "is not like 30m, 4h or 1d"),
    ({"route": []}, "unknown key route"),
])
def test_a_bad_notification_config_names_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        notify_config_from(data, {})


def test_the_config_file_types_its_notifications_and_the_url_env_is_read_at_send_time():
    config = parse_config("datasets: []\n"
                          "notifications:\n"
                          "  repeat_interval: 30m\n"
                          "  routes:\n"
                          "    - url_env: ONCALL_HOOK\n"
                          "      severities: critical\n")
    assert isinstance(config.notifications, NotificationsConfig)
    [route] = config.notifications.routes
    assert (route.url_env, route.severities) == ("ONCALL_HOOK", ("critical",))

    assert notify_config_from(config.notifications, {}).routes == []  # unset: this route is off
    sending = notify_config_from(config.notifications, {"ONCALL_HOOK": HOOK})
    assert [r.url for r in sending.routes] == [HOOK]
    assert sending.repeat_interval == dt.timedelta(minutes=30)


@pytest.mark.parametrize("section, where, message", [
    ("  routes:\n    - url: https://a.example.com/x\n      url_env: X\n",
     "4: notifications.routes.0", "give url or url_env"),
    ("  routes:\n    - url: hooks.example.com/s3cr3t\n",
     "4: notifications.routes.0.url", "not an http(s) URL (host (no host))"),
    ("  routes:\n    - url_env: X\n      severities: [urgent]\n",
     "5: notifications.routes.0.severities", "unknown severity urgent"),
    ("  attempts: 0\n", "3: notifications.attempts", "a whole number from 1 to 10"),
    ("  route: []\n", "3: notifications", "unknown key route (routes, repeat_interval, attempts)"),
])
def test_a_bad_notifications_section_is_refused_with_its_key_and_line(section, where, message):
    with pytest.raises(ConfigError) as refused:
        parse_config("datasets: []\nnotifications:\n" + section, "monitors.yaml")
    assert str(refused.value).startswith(f"monitors.yaml:{where}: ")
    assert message in str(refused.value) and "s3cr3t" not in str(refused.value)


def test_a_message_the_endpoint_missed_goes_out_with_the_next_run(sessions, sales):
    first = record(sessions, [fires(sales, day(0))])
    down = notify(sessions, first, sender=RecordingSender(failures=99),
                  config=NotifyConfig(routes=[Route(HOOK)], attempts=2, **FAST))
    assert down.skipped == {first.new[0]: "delivery failed"}
    with sessions() as session:
        [event] = session.scalars(select(AlertEvent).where(AlertEvent.kind == "notify_failed")).all()
        assert event.note == "webhook hooks.example.com unreachable: the next run sends it again"

    back = RecordingSender()
    quiet_run = record(sessions, [fires(sales, day(1), monitor="other", point=False)], now=NOW + HOUR)
    outcome = notify(sessions, quiet_run, sender=back, now=NOW + HOUR)
    assert sorted(outcome.notified) == sorted([first.new[0], *quiet_run.new])
    assert "row_count_anomaly on 2026-11-10" in back.posts[0][1]["text"]

    again = RecordingSender()
    notify(sessions, record(sessions, [], now=NOW + 2 * HOUR), sender=again, now=NOW + 2 * HOUR)
    assert again.posts == []  # delivered once, not owed any more
