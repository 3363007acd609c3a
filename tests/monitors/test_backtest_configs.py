"""`backtest --config V [--against W]`: two config versions judged over the same stored
history, the alerts one gains and loses against the other, per monitor and partition;
nothing real is touched."""
from __future__ import annotations

import datetime as dt
import json

import yaml

from monitors.cli import main
from monitors.config import MonitorConfig
from monitors.datasets import find_dataset
from monitors.judge import admin
from monitors.judge.backtest import backtest
from monitors.judge.plan import MonitorSpec
from tests.conftest import DEMO_END
from tests.monitors.test_config_versions import DATASET, run_partition
from tests.monitors.test_replay import counts

START = DEMO_END - dt.timedelta(days=29)
RANGE = ["--dataset", DATASET, "--from", START.isoformat(), "--to", DEMO_END.isoformat()]
# the automatic level monitor of products held as the demo's config v1 runs it: it finds
# the demo's level shift. (Not the volume drop: the demo redelivers that day corrected, and
# a backtest judges the history stored now, where the drop is gone.)
MONITOR = "level:products_held"
AUTOMATIC = MonitorSpec(MONITOR, "metric", "breakouts", "warning", column="products_held",
                        metric="mean", point=False, automatic=True, not_for_identifiers=True)
SILENCED = {"min_change": 5.0}  # v2: a 500% change of the level only


def silenced() -> MonitorConfig:
    return MonitorConfig(name=MONITOR, metric="mean", column="products_held",
                         detector="breakouts", options=SILENCED)


def edit_by_hand(settings) -> None:
    """What a person does in an editor: the level monitor of DATASET silenced in the YAML."""
    data = yaml.safe_load(settings.config_path.read_text())
    declared = next(d for d in data["datasets"] if d["name"] == DATASET)
    declared["monitors"] = [silenced().model_dump(include={"name", "metric", "column",
                                                           "detector", "options"})]
    settings.config_path.write_text(yaml.safe_dump(data, sort_keys=False))


def cli_json(capsys, *args):
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_version_that_silences_a_monitor_loses_its_alerts_and_gains_them_back(
        demo, sessions, capsys):
    with sessions.begin() as session:
        admin.save_monitor(session, demo, DATASET, silenced(), by="dana")
    with sessions() as session:
        old = backtest(session, find_dataset(session, DATASET), AUTOMATIC, START, DEMO_END)
    assert old, "the demo's level shift fires under v1"
    before = counts(sessions)

    report = cli_json(capsys, "backtest", "--config", "2", *RANGE)  # against v1, the one before
    assert (report["config"], report["against"]) == (2, 1)
    assert report["compared"] == [MONITOR]  # the monitors set alike are not judged
    assert report["changes"] == [f"monitor {MONITOR} added (breakouts {json.dumps(SILENCED)})"]
    assert [(a["monitor"], a["partition"]) for a in report["lost"]] == \
        [(MONITOR, a.partition.isoformat()) for a in old]
    assert report["gained"] == []
    assert report["per_monitor"] == {MONITOR: {"gained": 0, "lost": len(old)}}

    back = cli_json(capsys, "backtest", "--config", "1", "--against", "2", *RANGE)
    assert back["gained"] == report["lost"] and back["lost"] == []
    assert counts(sessions) == before  # no alert, occurrence, event or run written

    assert main(["backtest", "--config", "2", *RANGE]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"backtest of {DATASET} {START}..{DEMO_END}: config v2 against v1\n")
    assert f"- {old[0].partition} {MONITOR} {old[0].message}\n" in text
    assert f"0 alert(s) gained, {len(old)} lost, over 1 monitor(s) set differently" in text


def test_the_file_being_edited_is_compared_before_any_run_records_it(demo, sessions, capsys):
    edit_by_hand(demo)  # no run has seen it: no version recorded yet
    report = cli_json(capsys, "backtest", "--config", "current", *RANGE)
    assert (report["config"], report["against"]) == ("current (unrecorded)", 1)
    assert report["lost"] and {a["monitor"] for a in report["lost"]} == {MONITOR}

    run_partition(sessions, demo)  # a run records it as v2: the same comparison, by number
    again = cli_json(capsys, "backtest", "--config", "current", *RANGE)
    assert (again["config"], again["against"]) == (2, 1) and again["lost"] == report["lost"]


def test_bad_requests_are_usage_errors(demo, sessions, capsys):
    assert main(["backtest", "--config", "1", "--from", START.isoformat(),
                 "--to", DEMO_END.isoformat()]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert main(["backtest", "--config", "1", *RANGE]) == 2  # nothing before v1
    assert "first version" in capsys.readouterr().err
    assert main(["backtest", "--config", "9", "--against", "1", *RANGE]) == 2
    assert "no config version '9'" in capsys.readouterr().err
    assert main(["backtest", *RANGE]) == 2
    assert "needs --monitor, or --config" in capsys.readouterr().err
