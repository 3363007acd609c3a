"""Shared fixtures: a fresh store per test and a MONITORS_HOME of its own."""
from __future__ import annotations

import pytest

from monitors.settings import Settings, load_settings
from store.engine import open_store


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    home = tmp_path / "home"
    monkeypatch.setenv("MONITORS_HOME", str(home))
    monkeypatch.delenv("MONITORS_DB_URL", raising=False)
    monkeypatch.delenv("MONITORS_CONFIG", raising=False)
    return load_settings()


@pytest.fixture
def sessions(settings):
    engine, factory = open_store(settings.db_url)
    yield factory
    engine.dispose()
