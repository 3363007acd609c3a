"""Replay: a past run judged again in memory gives its findings back, or names each
difference with its cause; and an alert says what it was judged on."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from sqlalchemy import func, select

from monitors.cli import main
from monitors.config import MonitorConfig
from monitors.datasets import find_dataset
from monitors.intake.ingest import ingest_file
from monitors.judge import admin
from monitors.judge.provenance import describe
from monitors.judge.replay import replay_run
from store.models import Alert, AlertEvent, AlertOccurrence, Run
from tests.conftest import DEMO_END
from tests.monitors.test_config_versions import DATASET, run_partition


def counts(sessions) -> tuple:
    with sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(t))
                     for t in (Alert, AlertOccurrence, AlertEvent, Run))


def test_every_run_of_the_demo_replays_identical_and_writes_nothing(demo, sessions):
    truth = json.loads((demo.home / "demo" / "incidents.json").read_text())
    late_labels = {(i["dataset"], i["partition"]) for i in truth if i["kind"] == "late_labels"}
    # the partitions the upstream redelivered corrected, and the day it did
    corrected = {(i["dataset"], i["partition"]): i["corrected_on"] for i in truth
                 if i["corrected_on"]}
    assert corrected, "the demo redelivers its volume drop corrected"
    redelivered = "data re-delivered since the run: partition(s)"
    before = counts(sessions)
    with sessions() as session:
        runs = session.scalars(select(Run).order_by(Run.id)).all()
        in_force = {(r.dataset_id, r.partition_from): r.inputs for r in runs}  # the last run's
        findings, seen, landed_since, named_corrected = 0, set(), set(), set()
        for run in runs:
            replay = replay_run(session, demo, run.id)
            findings += replay.findings
            partition = run.partition_from.isoformat()
            first = (run.dataset_id, run.partition_from) not in seen
            seen.add((run.dataset_id, run.partition_from))
            if (replay.dataset, partition) in corrected and first:
                # the run that judged the broken file: replay judges the corrected one, and
                # names the redelivery with both fingerprints
                judged = run.inputs[partition]
                now = in_force[run.dataset_id, run.partition_from][partition]
                assert not replay.identical and judged != now, run.id
                for difference in replay.differences:
                    assert difference.causes == [
                        f"{redelivered} {partition} (fingerprint {judged[:12]} -> {now[:12]})"], \
                        (run.id, replay.differences)
                named_corrected.add((replay.dataset, partition))
                continue
            if replay.identical:
                continue
            # the next days until the redelivery judged the broken day in their history
            window = [p for (dataset, p), on in corrected.items()
                      if dataset == replay.dataset and p < partition < on]
            # the demo's late labels: the run judged the partition missing, and its file
            # landed afterwards. Replay judges the inputs stored now, so it names that cause
            # (it has no view of the store as it was before the file landed)
            for difference in replay.differences:
                if window:
                    assert difference.causes == [f"{redelivered} {window[0]}"], \
                        (run.id, replay.differences)
                    continue
                assert difference.causes == [f"{redelivered} {difference.partition}"], \
                    (run.id, replay.differences)
                landed_since.add((replay.dataset, difference.partition))
    assert named_corrected == set(corrected)
    assert landed_since <= late_labels
    assert len(runs) >= 80 and findings > 20  # the demo's incidents were found, and again
    assert counts(sessions) == before


def demo_run_with(sessions, monitor: str) -> Run:
    """The latest demo run of DATASET that found something with `monitor`."""
    with sessions() as session:
        runs = session.scalars(select(Run).where(
            Run.trigger == "demo", Run.dataset_id == find_dataset(session, DATASET).id)
            .order_by(Run.id.desc())).all()
        run = next(r for r in runs if any(f["monitor"] == monitor for f in r.findings))
        session.expunge(run)
        return run


def test_a_config_change_is_named_as_the_cause(demo, sessions, capsys):
    # the level shift's monitor: a run whose data were not redelivered since (the volume
    # drop's were: its replay names that cause as well)
    run = demo_run_with(sessions, "level:products_held")
    with sessions.begin() as session:
        admin.save_monitor(session, demo, DATASET, MonitorConfig(
            name="level:products_held", metric="mean", column="products_held",
            detector="breakouts", options={"min_change": 5.0}), by="dana")
    run_partition(sessions, demo)  # the saved version comes into force

    assert main(["runs", "replay", str(run.id), "--json"]) == 0  # its own config: as it was
    assert json.loads(capsys.readouterr().out)["identical"] is True

    assert main(["runs", "replay", str(run.id), "--config", "current", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identical"] is False and report["replay_config_version"] == 2
    [difference] = report["differences"]
    assert difference["monitor"] == "level:products_held" and difference["change"] == "vanished"
    [cause] = difference["causes"]
    assert cause.startswith("config changed v1 -> v2: monitor level:products_held") \
        and "5.0" in cause


def test_a_redelivery_is_named_as_the_cause(demo, sessions, capsys):
    with sessions() as session:
        run = session.scalars(select(Run).where(
            Run.trigger == "demo", Run.partition_from == DEMO_END,
            Run.dataset_id == find_dataset(session, DATASET).id)).one()
        run_id, old_fingerprint = run.id, run.inputs[DEMO_END.isoformat()]
    [path] = (demo.home / "landing" / DATASET).glob(f"*{DEMO_END}*")
    # the upstream delivers the day again, a third of it lost
    frame = pd.read_csv(path)
    corrected = path.with_name(path.stem + "_v2" + path.suffix)
    frame.head(len(frame) // 3).to_csv(corrected, index=False)
    with sessions.begin() as session:
        outcome = ingest_file(session, find_dataset(session, DATASET), corrected, DEMO_END)
        assert outcome.status == "ingested"

    assert main(["runs", "replay", str(run_id)]) == 0
    text = capsys.readouterr().out
    assert "volume:anomalies: appeared" in text
    assert f"because data re-delivered since the run: partition(s) {DEMO_END}" in text
    assert f"fingerprint {old_fingerprint[:12]} -> " in text
    assert "unexplained" not in text

    shown = json.loads((main(["runs", "show", str(run_id), "--json"]), capsys.readouterr().out)[1])
    [item] = shown["inputs"]
    assert item["fingerprint"] == old_fingerprint and item["still_in_force"] is False


def test_a_run_that_is_not_done_is_refused(demo, sessions, capsys):
    with sessions.begin() as session:
        run = Run(dataset_id=find_dataset(session, DATASET).id, trigger="manual",
                  partition_from=DEMO_END, partition_to=DEMO_END)
        session.add(run)
        session.flush()
        run_id = run.id
    assert main(["runs", "replay", str(run_id)]) == 2
    assert "only a succeeded run" in capsys.readouterr().err


def test_an_alert_says_what_it_was_judged_on(demo, sessions, capsys):
    alerts = json.loads((main(["alerts", "list", "--dataset", DATASET, "--json"]),
                         capsys.readouterr().out)[1])
    volume = next(a for a in alerts if a["monitor"] == "volume:anomalies")
    judged = volume["judged_on"]
    assert judged["detector"] == "anomalies" and judged["options"] == {"min_change": 0.1}
    assert judged["config_version"] == 1 and judged["end"] == volume["partition"]
    assert judged["points"] >= 14 and judged["start"] < judged["end"]
    # the volume drop's day was redelivered corrected and rerun: the alert keeps the inputs
    # of the run that raised it, not those in force now
    truth = json.loads((demo.home / "demo" / "incidents.json").read_text())
    [corrected] = [i for i in truth if i["dataset"] == DATASET and i["kind"] == "volume_drop"]
    assert corrected["corrected_on"] and volume["partition"] == corrected["partition"]
    with sessions() as session:
        runs = session.scalars(select(Run).where(
            Run.dataset_id == find_dataset(session, DATASET).id,
            Run.partition_from == dt.date.fromisoformat(volume["partition"])).order_by(Run.id)).all()
        [raised] = [r for r in runs if any(f["monitor"] == "volume:anomalies" for f in r.findings)]
        assert judged["inputs"] == raised.inputs != runs[-1].inputs
    line = describe(judged)
    assert line.startswith(f"judged on {judged['points']} points {judged['start']}..{judged['end']} "
                           "under config v1, detector anomalies {min_change: 0.1}")

