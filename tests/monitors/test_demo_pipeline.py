"""The demo is a pipeline: its verified scores are scored and delivered to the outbox by
stages, except on a day whose gate an alert holds (a warning or worse: the demo's scores
hold on warnings) until the data is corrected and rerun (the volume drop's redelivery) or a
person deals with the root alert (resolves, mutes or accepts it); then the stages deliver it."""
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
from monitors.pipeline.gates import gate_verdict, list_gate_changes
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


def gate_trail(sessions, partition: str) -> list[dict]:
    with sessions() as session:
        return list_gate_changes(session, SCORES, dt.date.fromisoformat(partition))


def scores_batches(sessions, partition: str) -> dict[str, list[int]]:
    """The scores' batches of a partition by status: their row counts, oldest first."""
    with sessions() as session:
        rows = session.execute(select(Batch.status, Batch.rows).join(Dataset).where(
            Dataset.name == SCORES, Batch.partition == dt.date.fromisoformat(partition))
            .order_by(Batch.id)).all()
    found: dict[str, list[int]] = {}
    for status, count in rows:
        found.setdefault(status, []).append(count)
    return found


def test_the_outbox_holds_no_day_an_alert_holds_and_every_verified_day_it_delivered(demo, sessions):
    missing = truth(demo)[(SCORES, "missing_batch")]["partition"]
    delivered, landed = outbox(demo), scored_days(sessions)
    assert missing not in landed and missing not in delivered
    # a delivered day holds every customer the model scored that day, once
    assert all(delivered[p] == landed[p] for p in delivered)
    # a day that waits is one whose gate holds it: the scores' gate holds on warnings
    # (the demo's config), so a warning on the snapshot or the scores holds it too
    for partition in sorted(set(landed) - set(delivered)):
        stages = stages_on(sessions, partition)
        assert {s["state"] for s in stages.values()} == {"held"}
        with sessions() as session:
            holder = session.get(Alert, stages["score"]["held_by"])
        assert holder.severity in ("critical", "warning")
    # the single-day corruptions of the snapshot are not delivered
    for kind in ("sign_flip", "unit_change", "duplicated_keys", "null_spike", "schema_change"):
        assert truth(demo)[("customer_snapshot", kind)]["partition"] not in delivered, kind
    assert len(delivered) > len(landed) / 2


def test_the_volume_drop_is_held_then_released_by_its_corrected_rerun_and_delivered(demo,
                                                                                      sessions):
    drop = truth(demo)[("customer_snapshot", "volume_drop")]
    day = drop["partition"]
    assert drop["corrected_on"] > day
    root = root_of_volume_drop(sessions, day)
    # the day was held by the volume drop's incident, released when the corrected snapshot
    # was rerun (its volume passed, resolving the incident), then scored and delivered
    trail = gate_trail(sessions, day)
    assert [c["verdict"] for c in trail] == ["held", "safe"]
    assert root.id in trail[0]["alert_ids"]
    assert root.status == "resolved"
    assert f"#{root.id} passed on {day}" in trail[1]["why"] or \
        f"#{root.id} resolved" in trail[1]["why"]
    ran = stages_on(sessions, day)
    assert [ran[s]["state"] for s in ("score", "deliver")] == ["succeeded", "succeeded"]
    # what reached the outbox is the corrected scores, not the 40% the model first scored
    batches = scores_batches(sessions, day)
    assert [outbox(demo)[day]] == batches["ingested"] == [scored_days(sessions)[day]]
    assert all(bad < 0.6 * outbox(demo)[day] for bad in batches["superseded"])


def held_root(sessions, partition: str) -> Alert:
    """The one incident root that holds the scores' gate on `partition`."""
    with sessions.begin() as session:
        gate = gate_verdict(session, SCORES, partition)
        holding = [session.get(Alert, a.id) for a in gate.holding]
        roots = {a.caused_by or a.id for a in holding}
        assert len(roots) == 1, gate.holding
        return session.get(Alert, roots.pop())


def _resolve(session, alert_id):
    resolve(session, alert_id, by="alice", resolution="fixed")


def _mute(session, alert_id):
    alert = session.get(Alert, alert_id)
    add_mute(session, matchers={"dataset": "customer_snapshot", "monitor": alert.monitor},
             reason="bundling campaign, products held jump by one", by="alice",
             ends_at=utcnow() + dt.timedelta(days=1), now=utcnow())


def _accept(session, alert_id):
    accept(session, alert_id, by="alice", note="the bundling campaign is the new normal")


@pytest.mark.parametrize("act", [_resolve, _mute, _accept], ids=["resolve", "mute", "accept"])
def test_a_held_day_is_delivered_once_its_root_alert_is_dealt_with(demo, sessions, act):
    # the bundling campaign: products held per customer jump by one, and the scores with it
    day = truth(demo)[("customer_snapshot", "level_shift")]["partition"]
    root = held_root(sessions, day)
    assert root.column == "products_held" and root.severity == "warning"
    # the worker looks at the held day: still held, nothing delivered
    run_due_stages(sessions, demo, worker_id="test")
    assert day not in outbox(demo)
    with sessions.begin() as session:
        act(session, root.id)
    # the worker's stages are the demo's script, run as subprocesses
    run_due_stages(sessions, demo, worker_id="test")
    ran = stages_on(sessions, day)
    assert [ran[s]["state"] for s in ("score", "deliver")] == ["succeeded", "succeeded"]
    assert "published" in ran["deliver"]["log_tail"]
    assert outbox(demo)[day] == scored_days(sessions)[day]
