"""Config versions: kept with who brought them in, listed, shown, diffed; and `config
validate` refuses what a run refuses, in the run's words, writing nothing."""
from __future__ import annotations

import datetime as dt
import json
import os

import pytest
import yaml
from sqlalchemy import func, select

from monitors.cli import main
from monitors.config import MonitorConfig
from monitors.datasets import find_dataset
from monitors.judge import admin
from monitors.pipeline import queue
from monitors.pipeline.run import code_version, execute_run
from store.models import Alert, AlertOccurrence, Batch, ConfigVersion, Run
from tests.conftest import DEMO_END

DATASET = "customer_snapshot"


def run_partition(sessions, settings, dataset=DATASET, partition=DEMO_END) -> int:
    with sessions.begin() as session:
        run_id = queue.request_run(session, find_dataset(session, dataset), partition, partition,
                                   trigger="manual", by="test").id
    execute_run(sessions, settings, run_id, notify=False)
    return run_id


def cli_json(capsys, *args):
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def edit_by_hand(settings, options: dict) -> None:
    """What a person does in an editor: the volume monitor of DATASET tuned in the YAML."""
    data = yaml.safe_load(settings.config_path.read_text())
    declared = next(d for d in data["datasets"] if d["name"] == DATASET)
    declared["monitors"] = [{"name": "volume:anomalies", "metric": "row_count",
                             "detector": "anomalies", "options": options}]
    settings.config_path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_a_hand_edit_is_a_new_version_at_the_next_run(demo, sessions, capsys):
    history = cli_json(capsys, "config", "history")
    assert [v["version"] for v in history] == [1] and history[0]["introduced_by"] == "file edit"

    edit_by_hand(demo, {"min_change": 0.3})
    assert len(cli_json(capsys, "config", "history")) == 1  # nothing has read the file yet
    run_id = run_partition(sessions, demo)

    history = cli_json(capsys, "config", "history")
    assert [v["version"] for v in history] == [2, 1]
    newest = history[0]
    assert newest["introduced_by"] == "file edit"
    mtime = os.stat(demo.config_path).st_mtime
    assert abs(dt.datetime.fromisoformat(newest["file_mtime_at"]).timestamp() - mtime) < 1e-3
    assert any("volume:anomalies" in change and "min_change" in change for change in newest["changes"])
    runs = {r["id"]: r for r in cli_json(capsys, "runs", "list", "--limit", "5")}
    assert runs[run_id]["config_version"] == 2

    run_partition(sessions, demo)  # the same form again: no new version
    assert len(cli_json(capsys, "config", "history")) == 2


def test_a_dashboard_save_is_kept_under_the_name_of_who_saved_it(demo, sessions, capsys):
    run_partition(sessions, demo)
    for min_change in (0.1, 0.3):
        with sessions.begin() as session:
            admin.save_monitor(session, demo, DATASET, MonitorConfig(
                name="volume:anomalies", metric="row_count", detector="anomalies",
                options={"min_change": min_change}), by="carol")
    history = cli_json(capsys, "config", "history")
    assert [(v["version"], v["introduced_by"]) for v in history] == [
        (3, "carol"), (2, "carol"), (1, "file edit")]
    run_id = run_partition(sessions, demo)  # the run finds the saved form already kept
    assert len(cli_json(capsys, "config", "history")) == 3
    with sessions() as session:
        assert session.get(Run, run_id).config_version == history[0]["hash"]

    diff = cli_json(capsys, "config", "diff", "2", "v3")
    assert diff["changes"] == [f"{DATASET}: monitor volume:anomalies option min_change: 0.1 -> 0.3"]
    assert main(["config", "diff", "2", "3"]) == 0
    assert "min_change: 0.1 -> 0.3" in capsys.readouterr().out

    assert main(["config", "show", "3"]) == 0
    shown = capsys.readouterr().out
    assert "min_change: 0.3" in shown and "config v3" in shown
    assert main(["config", "show", "99"]) == 2
    assert "no config version" in capsys.readouterr().err


def test_a_diff_names_datasets_added_and_removed(demo, sessions, capsys):
    run_partition(sessions, demo)
    data = yaml.safe_load(demo.config_path.read_text())
    # the demo's datasets name each other (upstream, labels): a copy of the first names none
    data["datasets"].append({**data["datasets"][0], "name": "snapshot_copy"})
    data["datasets"][0]["schedule"] = "30 8 * * *"
    demo.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    run_partition(sessions, demo)
    changes = cli_json(capsys, "config", "diff", "1", "2")["changes"]
    assert any(c.startswith("dataset snapshot_copy added") for c in changes)
    assert f"{DATASET}: schedule: 0 7 * * * -> 30 8 * * *" in changes
    assert "dataset snapshot_copy removed" in cli_json(capsys, "config", "diff", "2", "1")["changes"]


def store_rows(sessions) -> tuple:
    with sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(table))
                     for table in (ConfigVersion, Run, Alert, AlertOccurrence, Batch))


@pytest.mark.parametrize("breakage, says", [
    (lambda d: d["datasets"][0]["monitors"].append(
        {"name": "x", "metric": "row_count", "detector": "no_such_detector"}), "detector"),
    (lambda d: d["datasets"][0]["monitors"].append(
        {"name": "x", "metric": "row_count", "detector": "anomalies",
         "options": {"min_chnage": 0.2}}), "min_chnage"),
    # a value out of its range: the detector would refuse it on every partition
    (lambda d: d["datasets"][0]["monitors"].append(
        {"name": "x", "metric": "row_count", "detector": "anomalies",
         "options": {"min_change": 50}}), "monitor x: min_change: expected a number >= 0"),
    (lambda d: d["datasets"][0].update(schedule="every day"), "schedule"),
])
def test_validate_refuses_what_a_run_refuses_with_its_message_and_writes_nothing(
        demo, sessions, capsys, breakage, says):
    data = yaml.safe_load(demo.config_path.read_text())
    data["datasets"][0].setdefault("monitors", [])
    breakage(data)
    demo.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    before = store_rows(sessions)
    assert main(["config", "validate", str(demo.config_path)]) == 2
    refused = capsys.readouterr().err.strip()
    assert says in refused
    assert store_rows(sessions) == before  # nothing written

    run_id = run_partition(sessions, demo)
    with sessions() as session:
        run = session.get(Run, run_id)
        assert run.status == "failed" and run.error == refused


def test_validate_accepts_a_good_file_and_never_creates_a_store(settings, capsys, tmp_path):
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump({"datasets": [
        {"name": "sales", "format": "csv", "source": "landing/sales"}]}))
    assert main(["config", "validate", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    assert main(["config", "validate", str(tmp_path / "absent.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    if settings.db_url.startswith("sqlite"):
        assert not any(settings.home.glob("*.db")) and not any(settings.home.glob("*.sqlite*"))


def test_runs_list_and_show_give_the_fingerprints_and_versions(demo, sessions, capsys):
    rows = cli_json(capsys, "runs", "list", "--dataset", DATASET, "--limit", "3")
    assert rows and all(r["config_version"] == 1 and r["code_version"] == code_version()
                        for r in rows)
    shown = cli_json(capsys, "runs", "show", str(rows[0]["id"]))
    assert shown["config_version"] == 1 and shown["code_version"] == code_version()
    with sessions() as session:
        batch = session.scalars(select(Batch).where(
            Batch.dataset_id == find_dataset(session, DATASET).id,
            Batch.partition == DEMO_END, Batch.status == "ingested")).one()
    assert shown["inputs"] == [{
        "partition": DEMO_END.isoformat(), "fingerprint": batch.fingerprint,
        "source": batch.source, "rows": batch.rows, "batch_id": batch.id,
        "still_in_force": True, "in_force_fingerprint": batch.fingerprint}]
    assert main(["runs", "show", "999999"]) == 2
