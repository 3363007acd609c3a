"""Database passwords stay out of the config, the store, the UI and the logs.

A SQL source names its secret instead of holding it: `${NAME}` is replaced by the
environment variable NAME only when connecting (`expand`), so the config (versioned), the
dataset row (which the store's own debug logging prints) and listings keep the reference.
The config refuses a source with a password written out (`holds_secret`); one stored before
that rule is masked where it is shown (`mask_url`), and an error message is cleaned of a
password the driver may quote (`scrub`).
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
HIDDEN = "***"
# query parameters some dialects take credentials in (psycopg's password=, tokens, keys)
SECRET_PARAMETER = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)
SECRET_QUERY = re.compile(r"([?&][^=&]*(?:pass|secret|token|key|credential)[^=&]*=)[^&]*",
                          re.IGNORECASE)


class MissingSecret(ValueError):
    def __init__(self, name: str):
        super().__init__(f"the SQL source needs the environment variable {name}, which is not set")


def expand(source: str, environ: Mapping[str, str] = os.environ) -> str:
    """The source with every `${NAME}` replaced by its environment variable (inserted as is:
    a password with URL-special characters must be percent-encoded in the variable)."""
    def value(match: re.Match) -> str:
        found = environ.get(match.group(1))
        if found is None:
            raise MissingSecret(match.group(1))
        return found
    return REFERENCE.sub(value, source)


def holds_secret(source: str) -> bool:
    """Whether a database URL has a password or a secret query parameter written out rather
    than named as `${NAME}`."""
    try:
        url = make_url(source)
    except (ArgumentError, ValueError):
        return False  # not a URL here (a whole `${NAME}`, say): connecting will tell
    return any(not REFERENCE.fullmatch(v) for v in _secrets(url))


def _secrets(url: URL) -> list[str]:
    values = [url.password or ""]
    for key, value in url.query.items():
        if SECRET_PARAMETER.search(key):
            values += [value] if isinstance(value, str) else list(value)
    return [v for v in values if v]


def mask_url(source: str) -> str:
    """A database URL fit to show: its password (unless a `${NAME}` reference) and secret
    query parameters replaced by ***; a source that does not parse is not shown at all."""
    try:
        url = make_url(source)
    except (ArgumentError, ValueError):
        return "(a source that is not a SQLAlchemy URL)"
    shown = url.render_as_string(hide_password=True)
    if url.password and REFERENCE.fullmatch(url.password):
        shown = shown.replace(f":{HIDDEN}@", f":{url.password}@", 1)
    return SECRET_QUERY.sub(rf"\g<1>{HIDDEN}", shown)


def scrub(text: str, url: URL) -> str:
    """`text` without the secrets of `url` (a driver may quote its connection string)."""
    for secret in _secrets(url):
        text = text.replace(secret, HIDDEN)
    return text
