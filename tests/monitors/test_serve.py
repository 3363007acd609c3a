"""`monitors serve`: how the dashboard's server is started (the page load bench,
bench/page_load.py, measures what these settings cost)."""
from __future__ import annotations

import os

import pytest

from monitors.cli import main


@pytest.fixture
def started(sales, monkeypatch) -> list[str]:
    """The command `serve` hands the process over to (a store with datasets: no demo)."""
    command: list[str] = []

    def execv(path, argv):
        command.extend(argv)
        raise SystemExit(0)

    monkeypatch.setattr(os, "execv", execv)
    with pytest.raises(SystemExit):
        main(["serve", "--port", "8600"])
    return command


def test_the_served_dashboard_does_not_watch_its_sources(started):
    # with the watcher on, every new session walked all imported modules to watch the
    # project's own: a third to a half of the server's CPU per page load on the demo
    assert "--server.fileWatcherType=none" in started
    assert "--server.headless=true" in started  # nobody sits at the server's screen
    assert "--server.port=8600" in started
