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

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DatabaseError, OperationalError
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


class StoreFault(Exception):
    """The store cannot be used as it is: unreachable, read-only, corrupt, full, or its file
    gone. The message is one line: what, where, and what to do."""


# the driver's words for each fault (SQLite's, then PostgreSQL's), and what to do about it
_FAULTS = (
    (("unable to open database file", "connection refused", "could not connect",
      "connection failed", "could not translate host name", "name or service not known",
      "timeout expired", "server closed the connection", "no route to host"),
     "store unreachable", "start the database or fix MONITORS_DB_URL"),
    (("readonly database", "read-only", "read only"),
     "store is read-only", "give this process write access to it, or point MONITORS_DB_URL "
     "at a writable store"),
    (("file is not a database", "database disk image is malformed", "file is encrypted"),
     "store is corrupt", "restore it from a backup, or move it aside to start an empty store"),
    (("database or disk is full", "no space left on device", "could not extend file",
      "disk full"),
     "store is full", "free disk space where it lives; nothing was written"),
)


def describe_fault(exc: BaseException, url: str) -> StoreFault | None:
    """The one-line StoreFault a database error stands for; None when it is not a fault of
    the store itself (a constraint or a bug: those keep their traceback)."""
    if isinstance(exc, StoreFault):
        return exc
    if not isinstance(exc, DatabaseError):
        return None
    said = str(exc.orig if exc.orig is not None else exc).strip()
    first = said.splitlines()[0] if said else type(exc).__name__
    lowered = said.lower()
    where = _where(url)
    for words, what, todo in _FAULTS:
        if any(word in lowered for word in words):
            return StoreFault(f"{what}: {where}: {first}; {todo}")
    if isinstance(exc, OperationalError):
        return StoreFault(f"store unusable: {where}: {first}")
    return None


def _where(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or "(in memory)"
    # the URL as it was given, without its password
    return parsed.render_as_string(hide_password=True)


def make_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; SQLite gets the pragmas a shared store needs, and
    refuses to go on once its file is deleted or replaced under it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            _guard_file(engine, Path(path))
        return engine
    return create_engine(url, pool_pre_ping=True)


def _guard_file(engine: Engine, path: Path) -> None:
    """An open SQLite connection goes on reading and writing a file deleted under it, and
    a new one would make an empty file: what is written is then lost, while the command
    says it was done. The file's identity is taken at the first connection and checked
    each time a connection is taken from the pool (one stat)."""
    opened: dict[str, tuple[int, int]] = {}

    def identity() -> tuple[int, int] | None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        return stat.st_dev, stat.st_ino

    def first_connect(_dbapi_connection, _record) -> None:
        current = identity()
        if current is not None:
            opened.setdefault("file", current)

    def checkout(_dbapi_connection, _record, _proxy) -> None:
        known = opened.get("file")
        if known is None:
            return
        current = identity()
        if current != known:
            happened = "was deleted" if current is None else "was replaced by another file"
            raise StoreFault(f"store file gone: {path} {happened} while this process had it "
                             "open, so nothing more is read or written; restore the file and "
                             "restart this process")

    event.listen(engine, "connect", first_connect)
    event.listen(engine, "checkout", checkout)


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
