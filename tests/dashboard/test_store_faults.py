"""A store that cannot be used is one error line on every page, not a traceback, and an
action it meets is refused rather than confirmed (issue 14 #4). Before, each page showed
SQLAlchemy's traceback, and an acknowledgement after the store file was deleted said
"Acknowledged" while it went to the deleted file."""
from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest

from monitors.lifecycle.alerts import get_alert
from store.engine import open_store
from store.models import Dataset
from tests.dashboard.apptest import open_page
from tests.monitors.signals import fires, record

PAGES = ["overview", "alerts", "alert", "datasets", "model_outputs", "monitors", "pipeline"]


def database_file(settings) -> Path:
    assert settings.db_url.startswith("sqlite"), "a SQLite file's fault: sqlite only"
    return Path(settings.db_url.removeprefix("sqlite:///"))


def one_alert(sessions) -> int:
    with sessions.begin() as session:
        dataset = Dataset(name="shop", format="csv",
                          contract={"columns": [{"name": "id", "type": "integer"}]})
        session.add(dataset)
        session.flush()
        dataset_id = dataset.id
    return record(sessions, [fires(dataset_id, dt.date(2026, 3, 2))],
                  now=dt.datetime.now(dt.UTC)).new[0]


def errors(at) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # a SQLite file's fault
@pytest.mark.parametrize("page", PAGES)
def test_a_corrupt_store_is_one_error_line_on_every_page(app, settings, page):
    database = database_file(settings)
    database.parent.mkdir(parents=True, exist_ok=True)
    database.write_bytes(b"this is not a database" * 100)
    at = open_page(app, page, **({"alert": "1"} if page == "alert" else {}))
    assert not at.exception
    assert [e for e in errors(at) if e.startswith("store is corrupt")], errors(at)


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # the URL is not the test's store
@pytest.mark.parametrize("page", ["overview", "alerts", "pipeline"])
def test_an_unreachable_store_is_one_error_line(app, settings, monkeypatch, page):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MONITORS_DB_URL", f"postgresql://monitors:s3cret@127.0.0.1:{port}/m")
    at = open_page(app, page)
    assert not at.exception
    [line] = errors(at)
    assert line.startswith("store unreachable") and "s3cret" not in line, line


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # a SQLite file's fault
def test_an_acknowledgement_after_the_store_file_was_deleted_is_refused(app, settings, sessions):
    database = database_file(settings)
    alert_id = one_alert(sessions)
    at = open_page(app, "alert", alert=str(alert_id))
    database.unlink()
    at.button(key="alert.ack").click().run()
    assert not at.exception
    assert not [s.value for s in at.success], [s.value for s in at.success]
    assert [e for e in errors(at) if e.startswith(r"store file gone")], errors(at)
    assert not database.exists()


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # a SQLite file's fault
def test_an_acknowledgement_on_a_read_only_store_is_refused_and_the_page_says_why(
        app, settings, sessions, monkeypatch):
    database = database_file(settings)
    alert_id = one_alert(sessions)
    monkeypatch.setenv("MONITORS_DB_URL", f"sqlite:///file:{database}?mode=ro&uri=true")
    at = open_page(app, "alert", alert=str(alert_id))
    at.button(key="alert.ack").click().run()
    assert not at.exception
    assert not [s.value for s in at.success]
    assert [e for e in errors(at) if e.startswith("store is read\\-only")], errors(at)
    engine, fresh = open_store(settings.db_url)
    with fresh() as session:
        assert get_alert(session, alert_id)["status"] == "open"
    engine.dispose()
