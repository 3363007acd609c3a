"""Notifications: one webhook message per run and dataset, summing up its new alerts.

`notify_run` is the whole pipeline, stage by stage (Alertmanager's notify stages):

1. candidates: the run's new and reopened alerts of this dataset, and those whose delivery
   failed before, that are still unresolved;
2. nothing at all for a backfill: replayed history is not news;
3. drop the muted ones: a mute recorded on them by the run, or one active now;
4. drop those notified within `repeat_interval` (a flapping alert says so once);
5. route by severity and owner; one message per endpoint (Slack-compatible JSON);
6. send through a `Sender`, retrying with backoff; a failure is logged, never raised,
   so a dead endpoint cannot fail a run; alerts delivered somewhere get `notified_at`;
   the others get a `notify_failed` event and are candidates again at the next run.

Every dropped alert is reported with the reason (`Notified.skipped`).
Webhook URLs carry secrets (Slack's do): logs name the host only.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from monitors.errors import Invalid
from monitors.lifecycle.alerts import EventKind, Recorded
from monitors.lifecycle.mutes import active_mutes, alert_fields, is_muted
from monitors.notifications import (
    NotificationsConfig,
    check_http_url,
    parse_notifications,
)
from monitors.notifications import host_of as _host  # logs name the host of a URL only
from store.models import Alert, AlertEvent, AlertStatus, Dataset, Severity

log = logging.getLogger(__name__)

# Slack refuses messages with more than 50 blocks; a summary needs far fewer
MAX_LISTED = 20
_SEVERITY_ORDER = {s.value: rank for rank, s in enumerate(Severity)}  # worst first


@dataclass(frozen=True, slots=True)
class Route:
    """A webhook and what it wants: alerts of these severities and/or owners (None: any)."""

    url: str = field(repr=False)  # webhook URLs carry secrets: never in a repr or a log
    severities: tuple[str, ...] | None = None
    owners: tuple[str, ...] | None = None

    @property
    def host(self) -> str:
        return _host(self.url)

    def accepts(self, alert: Alert) -> bool:
        return ((self.severities is None or alert.severity in self.severities)
                and (self.owners is None or alert.owner in self.owners))


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    routes: Sequence[Route] = ()
    repeat_interval: dt.timedelta = dt.timedelta(hours=4)
    attempts: int = 3
    backoff: dt.timedelta = dt.timedelta(seconds=2)  # doubled after each failed attempt


def notify_config_from(data: NotificationsConfig | Mapping[str, Any] | None,
                       environ: Mapping[str, str] | None = os.environ) -> NotifyConfig:
    """The NotifyConfig to send with, from the config's typed `notifications` section (or
    the same as plain data, checked here; monitors.notifications documents the keys).

    A `url_env` route's variable is read now, where messages are sent: a route whose
    variable is unset is left out with a warning, so notifications are off where no secret
    is configured (a laptop, CI), not broken. With `environ=None` the shape alone is checked
    and `url_env` routes are left out."""
    section = parse_notifications(data)
    routes = []
    for number, entry in enumerate(section.routes, start=1):
        url = entry.url
        if entry.url_env is not None:
            if environ is None:  # the shape only: the variable is read where messages are sent
                continue
            url = environ.get(entry.url_env)
            if not url:
                log.warning("notifications.routes[%d]: %s is not set; this route is off",
                            number, entry.url_env)
                continue
            try:
                check_http_url(url)
            except ValueError as exc:
                raise Invalid(f"notifications.routes[{number}]: {exc}") from None
        routes.append(Route(url, severities=entry.severities, owners=entry.owners))
    return NotifyConfig(routes=routes, repeat_interval=section.repeat_every,
                        attempts=section.attempts)


class PermanentFailure(Exception):
    """A sender's way of saying that trying again cannot help (a removed webhook)."""


class Sender(Protocol):
    def post(self, url: str, payload: dict[str, Any]) -> None:
        """Deliver or raise."""


class HttpSender:
    """POSTs JSON with urllib; any 2xx is a delivery."""

    def __init__(self, timeout: float = 10.0):
        self.timeout = timeout

    def post(self, url: str, payload: dict[str, Any]) -> None:
        request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            # 4xx means the hook or the payload is wrong, except for throttling and timeouts
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise PermanentFailure(f"HTTP {exc.code} {exc.reason}") from None
            raise


@dataclass
class Notified:
    """What `notify_run` did: endpoints (by host) reached and not, alerts carried and the
    reason each other candidate stayed quiet."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notified: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)


def notify_run(session: Session, *, dataset: str | Dataset, recorded: Recorded, backfill: bool,
               now: dt.datetime, config: NotifyConfig, sender: Sender) -> Notified:
    """Send one message per endpoint summing up the run's new and reopened, unmuted alerts
    of `dataset` (a name or the Dataset). A failing endpoint is retried and logged, never
    raised; database errors do propagate (they are the run's business).

    Call it after the run's alerts are committed: it sends over the network, and it only
    writes `notified_at` (the caller commits that too)."""
    outcome = Notified()
    name = dataset if isinstance(dataset, str) else dataset.name
    candidates = list(dict.fromkeys([*recorded.new, *recorded.reopened, *_owed(session, name)]))
    if not candidates:
        return outcome
    if backfill:
        outcome.skipped = {i: "backfill" for i in candidates}
        return outcome
    mutes = active_mutes(session, now)
    alerts = []
    for alert in session.scalars(select(Alert).join(Dataset, Dataset.id == Alert.dataset_id)
                                 .where(Alert.id.in_(candidates), Dataset.name == name)
                                 .order_by(Alert.id)).all():
        reason = _quiet_reason(alert, name, recorded, mutes, now, config.repeat_interval)
        if reason:
            outcome.skipped[alert.id] = reason
        else:
            alerts.append(alert)
    by_url: dict[str, list[Alert]] = {}
    for alert in alerts:
        urls = [r.url for r in config.routes if r.accepts(alert)]
        if not urls:
            outcome.skipped[alert.id] = "no route"
        for url in urls:
            by_url.setdefault(url, []).append(alert)
    delivered: set[int] = set()
    for url, routed in by_url.items():
        payload = render_message(name, routed, reopened=set(recorded.reopened))
        if _send(sender, url, payload, config):
            outcome.sent.append(_host(url))
            delivered.update(a.id for a in routed)
        else:
            outcome.failed.append(_host(url))
    for alert in alerts:
        if alert.id in delivered:
            alert.notified_at = now
            outcome.notified.append(alert.id)
        elif alert.id not in outcome.skipped:
            outcome.skipped[alert.id] = "delivery failed"
            session.add(AlertEvent(alert_id=alert.id, kind=EventKind.notify_failed, by="notifier", at=now,
                                   note=f"webhook {', '.join(outcome.failed)} unreachable: "
                                        "the next run sends it again"))
    session.flush()
    return outcome


def _owed(session: Session, dataset: str) -> list[int]:
    """Unresolved alerts whose last delivery failed, so that an endpoint down for a while
    delays a message instead of losing it."""
    return list(session.scalars(
        select(Alert.id).distinct()
        .join(Dataset, Dataset.id == Alert.dataset_id)
        .join(AlertEvent, AlertEvent.alert_id == Alert.id)
        .where(Dataset.name == dataset, Alert.status != AlertStatus.resolved,
               AlertEvent.kind == EventKind.notify_failed,
               or_(Alert.notified_at.is_(None), AlertEvent.at > Alert.notified_at))))


def _quiet_reason(alert: Alert, dataset: str, recorded: Recorded, mutes, now: dt.datetime,
                  repeat_interval: dt.timedelta) -> str | None:
    if alert.status == AlertStatus.resolved:
        return "resolved"
    if alert.caused_by is not None:  # one notification per incident: its root's
        return f"caused by #{alert.caused_by}"
    if alert.id in recorded.muted or is_muted(alert_fields(alert, dataset), mutes, now):
        return "muted"
    if alert.notified_at is not None and now - alert.notified_at < repeat_interval:
        return "repeat interval"
    return None


def render_message(dataset: str, alerts: Sequence[Alert], *,
                   reopened: Collection[int] = ()) -> dict[str, Any]:
    """A Slack-compatible message: `text` for notifications and plain hooks, `blocks` for
    the layout. The worst alerts first, at most MAX_LISTED listed."""
    ordered = sorted(alerts, key=lambda a: (_SEVERITY_ORDER.get(a.severity, 9), a.id))
    counts = {}
    for alert in ordered:
        counts[alert.severity] = counts.get(alert.severity, 0) + 1
    tally = ", ".join(f"{n} {severity}" for severity, n in counts.items())
    noun = "alert" if len(ordered) == 1 else "alerts"
    title = f"{dataset}: {len(ordered)} new {noun} ({tally})"
    blocks: list[dict[str, Any]] = [{"type": "header",
                                     "text": {"type": "plain_text", "text": title[:150]}}]
    for alert in ordered[:MAX_LISTED]:
        where = f"`{alert.column}` " if alert.column else ""
        again = " (reopened)" if alert.id in reopened else ""
        line = (f"*{alert.severity}* {where}{alert.monitor} on {alert.partition}{again}\n"
                f"{alert.message}\nalert {alert.id}")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": line[:3000]}})
    if len(ordered) > MAX_LISTED:
        blocks.append({"type": "context", "elements": [{
            "type": "mrkdwn",
            "text": f"and {len(ordered) - MAX_LISTED} more: "
                    f"`python -m monitors alerts list --dataset {dataset} --status open`"}]})
    lines = [title] + [f"- {a.severity} {a.monitor}{' ' + a.column if a.column else ''} "
                       f"on {a.partition}: {a.message}" for a in ordered[:MAX_LISTED]]
    return {"text": "\n".join(lines), "blocks": blocks}


def _send(sender: Sender, url: str, payload: dict[str, Any], config: NotifyConfig) -> bool:
    host = _host(url)
    attempts = max(1, config.attempts)
    for attempt in range(1, attempts + 1):
        try:
            sender.post(url, payload)
            return True
        except PermanentFailure as exc:
            log.error("webhook %s refused the message, not retrying: %s", host, _scrub(exc, url, host))
            return False
        except Exception as exc:  # any failure of the endpoint must stay out of the run
            if attempt == attempts:
                log.error("webhook %s failed %d times, giving up: %s", host, attempts,
                          _scrub(exc, url, host))
                return False
            delay = config.backoff.total_seconds() * 2 ** (attempt - 1)
            log.warning("webhook %s failed (attempt %d of %d), retrying in %.1f s: %s", host,
                        attempt, attempts, delay, _scrub(exc, url, host))
            time.sleep(delay)
    return False


def _scrub(exc: BaseException, url: str, host: str) -> str:
    # urllib quotes the whole URL in some messages ("unknown url type: ..."), a proxy or a
    # server may quote the path alone, and Slack's token is in the path
    text = f"{type(exc).__name__}: {exc}".replace(url, host)
    secret = urlsplit(url)._replace(scheme="", netloc="").geturl()
    return text.replace(secret, "/***") if secret.strip("/") else text
