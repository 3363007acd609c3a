"""Engine and session setup, and bringing the schema up to date on start."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
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


def upgrade(engine: Engine) -> None:
    """Apply every pending migration; a no-op on an up-to-date store."""
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
