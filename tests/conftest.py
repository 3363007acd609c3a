"""Shared fixtures: a fresh store per test, on SQLite and on a real PostgreSQL server, and
a MONITORS_HOME of its own.

PostgreSQL is a throwaway server started once per test session (PLATFORM.md's recipe).
Without its binaries the PostgreSQL half is skipped, except in CI (CI=true), where a
missing server fails the suite instead. `MONITORS_TEST_DBS=sqlite` runs one half only.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
from pathlib import Path

import pytest

from monitors.demo import land_demo
from monitors.settings import Settings, load_settings
from store.engine import open_store
from tests.postgres import PostgresServer, server_binaries

BACKENDS = [b for b in os.environ.get("MONITORS_TEST_DBS", "sqlite,postgresql").split(",") if b]
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_binaries() -> Path:
    binaries = server_binaries()
    if binaries is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL's server binaries are missing: .ci/run must install postgresql")
        pytest.skip("PostgreSQL is not installed")
    return binaries


@pytest.fixture(scope="session")
def postgres_server(postgres_binaries):
    """The URL of a PostgreSQL server for this test session (without a database name)."""
    server = PostgresServer(postgres_binaries)
    server.start()
    yield server.url
    server.remove()


def _fresh_database(server_url: str) -> str:
    import psycopg

    name = f"t{os.getpid()}_{next(_database_numbers)}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url}/{name}"


@pytest.fixture(params=BACKENDS)
def settings(request, tmp_path, monkeypatch) -> Settings:
    home = tmp_path / "home"
    monkeypatch.setenv("MONITORS_HOME", str(home))
    monkeypatch.delenv("MONITORS_CONFIG", raising=False)
    if request.param == "postgresql":
        monkeypatch.setenv("MONITORS_DB_URL", _fresh_database(request.getfixturevalue("postgres_server")))
    else:
        monkeypatch.delenv("MONITORS_DB_URL", raising=False)
    return load_settings()


DEMO_END = dt.date(2026, 6, 30)
DEMO_DAYS = 40


def corrected_days(home, dataset: str = "customer_snapshot") -> set[str]:
    """The partitions of `dataset` the demo's upstream re-delivered corrected (the ground
    truth's `corrected_on`), as ISO dates: each has one more batch and one more run."""
    incidents = json.loads((home / "demo" / "incidents.json").read_text())
    return {i["partition"] for i in incidents if i["dataset"] == dataset and i.get("corrected_on")}
_templates: dict[tuple[str, int], tuple[Path, str | None]] = {}


def _template(backend: str, seed: int, request, tmp_path_factory) -> tuple[Path, str | None]:
    """The demo of `seed` landed once per backend (and pytest-xdist worker): its
    MONITORS_HOME, and its database on PostgreSQL."""
    if (backend, seed) not in _templates:
        home = tmp_path_factory.mktemp(f"demo-{backend}-{seed}") / "home"
        environ = {"MONITORS_HOME": str(home)}
        database = None
        if backend == "postgresql":
            server = request.getfixturevalue("postgres_server")
            database = f"demo_template_{len(_templates)}"
            _admin(server, f'CREATE DATABASE "{database}"')
            environ["MONITORS_DB_URL"] = f"{server}/{database}"
        settings = load_settings(environ)
        engine, sessions = open_store(settings.db_url)
        land_demo(sessions, settings, days=DEMO_DAYS, seed=seed, end=DEMO_END)
        engine.dispose()
        _templates[backend, seed] = (home, database)
    return _templates[backend, seed]


def _admin(server: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture
def demo_of_seed(settings: Settings, request, tmp_path_factory):
    """`demo_of_seed(seed)` fills the test's store and MONITORS_HOME with the demo of that
    seed (40 days up to DEMO_END), landed once per backend and copied per test (a file copy
    on SQLite, a template database on PostgreSQL): landing costs about 30 s of CPU a time,
    a copy well under one. Call it before `sessions` is made: the test's database is replaced."""
    def copy(seed: int) -> Settings:
        backend = "postgresql" if settings.db_url.startswith("postgresql") else "sqlite"
        home, database = _template(backend, seed, request, tmp_path_factory)
        shutil.copytree(home, settings.home, dirs_exist_ok=True)
        if database is not None:
            server, name = settings.db_url.rsplit("/", 1)
            _admin(server, f'DROP DATABASE "{name}"')
            _admin(server, f'CREATE DATABASE "{name}" TEMPLATE "{database}"')
        return settings

    return copy


@pytest.fixture
def demo(demo_of_seed) -> Settings:
    """The test's store and MONITORS_HOME hold the demo's 40 days of seed 1 (demo_of_seed).
    Request it before `sessions`: the test's database is replaced."""
    return demo_of_seed(1)


@pytest.fixture
def sessions(settings):
    engine, factory = open_store(settings.db_url)
    yield factory
    engine.dispose()
