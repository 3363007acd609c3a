"""The CLI writes numbers as the alert's message does ("2,362", "0.5696"), not as floats
come out of the store ("2361.9280377474", "962.0"); --json keeps the full values."""
from __future__ import annotations

import json

from tests.monitors.signals import alerts, day, fires, record, run_cli


def test_alerts_show_rounds_what_it_prints_and_json_keeps_it_whole(settings, sessions, sales,
                                                                   capsys):
    record(sessions, [fires(sales, day(0), value=2361.9280377474)])
    [alert] = alerts(sessions)
    assert run_cli(settings, sessions, "alerts", "show", str(alert["id"])) == 0
    text = capsys.readouterr().out
    assert "expected 220 in [180, 260], value 2,362;" in text
    assert run_cli(settings, sessions, "alerts", "show", str(alert["id"]), "--json") == 0
    assert json.loads(capsys.readouterr().out)["value"] == 2361.9280377474
