"""The demo is a pipeline: its verified scores are scored and delivered to the outbox by
stages, except on the volume-drop day, whose gate holds them until a person deals with the
root alert (resolves, mutes or accepts it); then the worker's stages deliver it."""
from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from sqlalchemy import select

from monitors.demo import SCORES
from monitors.judge.baselines import accept
from monitors.lifecycle.alerts import resolve
from monitors.lifecycle.mutes import add_mute
from monitors.pipeline.stages import list_stages, run_due_stages
from store.models import Alert, Batch, Dataset, utcnow


def truth(settings) -> dict[str, dict]:
    incidents = json.loads((settings.home / "demo" / "incidents.json").read_text())
    return {(i["dataset"], i["kind"]): i for i in incidents}


def outbox(settings) -> dict[str, int]:
    """Each delivered partition with the number of customers in its file."""
    folder = settings.home / "outbox"
    return {path.stem.removeprefix(f"{SCORES}_"): sum(1 for _ in csv.DictReader(path.open()))
            for path in sorted(folder.glob("*.csv"))}


def scored_days(sessions) -> dict[str, int]:
    with sessions() as session:
        rows = session.execute(select(Batch.partition, Batch.rows).join(Dataset)
                               .where(Dataset.name == SCORES, Batch.status == "ingested")).all()
    return {p.isoformat(): n for p, n in rows}


def root_of_volume_drop(sessions, partition: str) -> Alert:
    with sessions() as session:
        return session.scalars(select(Alert).join(Dataset).where(
            Dataset.name == "customer_snapshot", Alert.monitor == "volume:anomalies",
            Alert.partition == dt.date.fromisoformat(partition))).one()


def stages_on(sessions, partition: str) -> dict[str, dict]:
    with sessions() as session:
        return {s["stage"]: s for s in list_stages(session, SCORES, dt.date.fromisoformat(partition))}


def test_the_outbox_holds_every_verified_day_but_the_volume_drop(demo, sessions):
    drop = truth(demo)[("customer_snapshot", "volume_drop")]["partition"]
    missing = truth(demo)[(SCORES, "missing_batch")]["partition"]
    delivered, landed = outbox(demo), scored_days(sessions)
    assert drop in landed and missing not in landed
    assert drop not in delivered and missing not in delivered
    # a delivered day holds every customer the model scored that day, once
    assert all(delivered[p] == landed[p] for p in delivered)
    # a day that waits is one whose gate a critical alert holds, and nothing else
    for partition in sorted(set(landed) - set(delivered)):
        assert {s["state"] for s in stages_on(sessions, partition).values()} == {"held"}
    assert len(delivered) > len(landed) / 2
    root = root_of_volume_drop(sessions, drop)
    held = stages_on(sessions, drop)
    assert [held[s]["state"] for s in ("score", "deliver")] == ["held", "held"]
    assert held["score"]["held_by"] == root.id
    assert not (demo.home / "demo" / "scored" / f"{SCORES}_{drop}.csv").exists()


def _resolve(session, alert_id):
    resolve(session, alert_id, by="alice", resolution="fixed")


def _mute(session, alert_id):
    alert = session.get(Alert, alert_id)
    add_mute(session, matchers={"dataset": "customer_snapshot", "monitor": alert.monitor},
             reason="upstream filter bug, vendor reloading", by="alice",
             ends_at=utcnow() + dt.timedelta(days=1), now=utcnow())


def _accept(session, alert_id):
    accept(session, alert_id, by="alice", note="the smaller snapshot is the new normal")


@pytest.mark.parametrize("act", [_resolve, _mute, _accept], ids=["resolve", "mute", "accept"])
def test_the_held_day_is_delivered_once_its_root_alert_is_dealt_with(demo, sessions, act):
    drop = truth(demo)[("customer_snapshot", "volume_drop")]["partition"]
    root = root_of_volume_drop(sessions, drop)
    # the worker looks at the held day: still held, nothing delivered
    run_due_stages(sessions, demo, worker_id="test")
    assert drop not in outbox(demo)
    with sessions.begin() as session:
        act(session, root.id)
    # the worker's stages are the demo's script, run as subprocesses
    run_due_stages(sessions, demo, worker_id="test")
    ran = stages_on(sessions, drop)
    assert [ran[s]["state"] for s in ("score", "deliver")] == ["succeeded", "succeeded"]
    assert "published" in ran["deliver"]["log_tail"]
    assert outbox(demo)[drop] == scored_days(sessions)[drop]
