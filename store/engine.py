"""Engine and session setup, and bringing the schema up to date on start.

Every command opens the store, and nearly always the schema is already at head: that is
answered by reading the stored revision and the migration files' revisions, and alembic
(a quarter of a second to import) is loaded only when there is something to apply.
"""
from __future__ import annotations

import ast
import functools
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger("store")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL keeps readers (the dashboard) fast while the worker writes (PLATFORM.md)
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "busy_timeout=30000", "synchronous=NORMAL",
                   "foreign_keys=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite gets the pragmas a shared store needs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


@functools.cache
def script_heads() -> frozenset[str] | None:
    """The head revision(s) of the migration scripts, read from their `revision` and
    `down_revision` lines; None when a script says it some other way (then alembic,
    which knows every way, decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        values = _literal_assignments(path)
        revision, down = values.get("revision"), values.get("down_revision")
        down = (down,) if isinstance(down, str) else down or ()
        if (not isinstance(revision, str) or not isinstance(down, tuple)
                or not all(isinstance(d, str) for d in down) or values.get("depends_on")):
            return None
        revisions.add(revision)
        parents.update(down)
    heads = revisions - parents
    return frozenset(heads) if heads and parents <= revisions else None


def _literal_assignments(path: Path) -> dict[str, Any]:
    """A module's top-level `name = literal` (or `name: type = literal`) statements; a value
    that is not a literal stays an AST node, which no check above accepts."""
    values: dict[str, Any] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                values[target.id] = value
    return values


def at_head(engine: Engine) -> bool:
    """Whether the store's recorded revision is the scripts' head: nothing to apply."""
    heads = script_heads()
    if heads is None:
        return False
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        stored = set(connection.scalars(text("SELECT version_num FROM alembic_version")))
    return stored == heads


def upgrade(engine: Engine) -> None:
    """Apply every pending migration; a no-op on an up-to-date store."""
    if at_head(engine):
        return
    from alembic import command  # only here: a store at head never loads alembic
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def open_store(url: str) -> tuple[Engine, sessionmaker[Session]]:
    """The engine and session factory for `url`, with the schema brought up to date."""
    return wait_for_store(url, delays=())


def wait_for_store(url: str, delays: tuple[float, ...] = (1, 2, 5, 10)) -> tuple[Engine, sessionmaker[Session]]:
    """`open_store`, waiting as long as it takes while the database is unreachable (the
    next delay, then the last one again and again): a worker started before its database
    (a reboot of both, say) waits instead of dying. No delays: the first error is raised."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    attempt = 0
    while True:
        try:
            upgrade(engine)
            return engine, sessionmaker(engine, expire_on_commit=False)
        except OperationalError as exc:
            if not delays:
                engine.dispose()
                raise
            delay = delays[min(attempt, len(delays) - 1)]
            attempt += 1
            # the driver's own words name host and port, never the password
            log.warning("store unreachable (%s); trying again in %.0f s",
                        str(exc.orig or exc).strip().splitlines()[0], delay)
            time.sleep(delay)
