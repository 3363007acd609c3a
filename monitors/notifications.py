"""The `notifications` section of the monitors YAML, typed: parsed with the rest of the
config, so nothing downstream re-validates a dict.

    notifications:
      repeat_interval: 4h            # m, h or d
      attempts: 3                    # 1 to 10
      routes:
        - url_env: ONCALL_WEBHOOK    # the URL from the environment: secrets stay out of the file
          severities: [critical]
        - url: https://hooks.example.com/services/...
          owners: [growth]

This module is light on purpose (pydantic and the store's enums only): `monitors.config`
parses with it and `monitors.lifecycle.notify` reads it, and neither has to import the other.
A `url_env` route's variable is read where messages are sent (`monitors.lifecycle.notify`), not here.
Webhook URLs carry secrets (Slack's do): errors name the host only, never the input.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitors.errors import Invalid
from store.models import Severity

ROUTE_KEYS = ("url", "url_env", "severities", "owners")
NOTIFICATION_KEYS = ("routes", "repeat_interval", "attempts")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def host_of(url: str) -> str:
    """What a log or an error may say about a webhook URL: its host (and port)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else (parts.hostname or "(no host)")


def check_http_url(url: str) -> str:
    """`url` when it is http(s); the error names the host only."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL (host {host_of(url)})")
    return url


def interval(text: str) -> dt.timedelta:
    """'30m', '4h' or '1d' as a timedelta."""
    amount, unit = text[:-1].strip(), text[-1:]
    if unit not in _UNITS or not amount.isdigit():
        raise ValueError(f"{text!r} is not like 30m, 4h or 1d")
    return dt.timedelta(**{_UNITS[unit]: int(amount)})


def _unknown_keys(data: Any, allowed: tuple[str, ...]) -> None:
    # the allowed keys are listed, which pydantic's "extra inputs are not permitted" does not
    unknown = sorted(set(data) - set(allowed)) if isinstance(data, Mapping) else []
    if unknown:
        raise ValueError(f"unknown key {', '.join(map(str, unknown))} ({', '.join(allowed)})")


def _names(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError("a name or a list of names")


class RouteConfig(BaseModel):
    """A webhook and what it wants: alerts of these severities and/or owners (None: any)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    url: str | None = Field(default=None, repr=False)  # may carry a secret: never in a repr
    url_env: str | None = None
    severities: tuple[str, ...] | None = None
    owners: tuple[str, ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise ValueError("a mapping with url or url_env")
        _unknown_keys(data, ROUTE_KEYS)
        if ("url" in data) == ("url_env" in data):
            raise ValueError("give url or url_env, one of them")
        return data

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return None if value is None else check_http_url(value)

    @field_validator("severities", mode="before")
    @classmethod
    def _severities(cls, value: Any) -> tuple[str, ...] | None:
        names = _names(value)
        known = [s.value for s in Severity]
        unknown = sorted(set(names or ()) - set(known))
        if unknown:
            raise ValueError(f"unknown severity {', '.join(unknown)} ({', '.join(known)})")
        return names

    @field_validator("owners", mode="before")
    @classmethod
    def _owners(cls, value: Any) -> tuple[str, ...] | None:
        return _names(value)


class NotificationsConfig(BaseModel):
    """Where and how often alerts are sent (`monitors.lifecycle.notify` sends them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    routes: tuple[RouteConfig, ...] = ()
    # kept as written ("4h"), so saving the config writes back what the person wrote
    repeat_interval: str = "4h"
    attempts: int = 3

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: Any) -> Any:
        _unknown_keys(data, NOTIFICATION_KEYS)
        return data

    @field_validator("routes", mode="before")
    @classmethod
    def _routes(cls, value: Any) -> Any:
        return value or ()  # `routes:` with nothing under it: none

    @field_validator("repeat_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> str:
        interval(str(value))
        return str(value)

    @field_validator("attempts", mode="before")
    @classmethod
    def _attempts(cls, value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10:
            raise ValueError("a whole number from 1 to 10")
        return value

    @property
    def repeat_every(self) -> dt.timedelta:
        return interval(self.repeat_interval)


def parse_notifications(data: NotificationsConfig | Mapping[str, Any] | None) -> NotificationsConfig:
    """The typed section from plain data (or as is); Invalid names each key that is wrong."""
    if isinstance(data, NotificationsConfig):
        return data
    try:
        return NotificationsConfig.model_validate(dict(data or {}))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(["notifications", *(str(p) for p in err["loc"])])
            problems.append(f"{key}: {err['msg'].removeprefix('Value error, ')}")
        raise Invalid("\n".join(problems)) from None
