"""Drift against a pinned reference: a persistent drift stays one open alert until it is
fixed or accepted, where the recent window alone forgets it within a week."""
from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest
import yaml
from sqlalchemy import select

from monitors.catalog import sync_datasets
from monitors.config import ConfigError, load_config, parse_config
from monitors.judge.baselines import accept
from monitors.judge.provenance import describe
from monitors.judge.references import load_references
from monitors.judge.replay import replay_run
from monitors.pipeline.run import execute_run
from store.models import Alert, Dataset, Run
from tests.monitors import steps

NAME = "scores"
DRIFT_AT = 28
DAYS = 50


def day(n: int) -> dt.date:
    return steps.START + dt.timedelta(days=n)


def write(settings, references=None, **extra) -> None:
    dataset = {"name": NAME, "kind": "model_output", "format": "csv", "source": f"landing/{NAME}",
               "contract": {"columns": [{"name": "id", "type": "integer", "sensitive": True},
                                        {"name": "score", "type": "float"}]}, **extra}
    if references is not None:
        dataset["references"] = references
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(yaml.safe_dump({"datasets": [dataset]}))


def deliver(settings, n: int) -> None:
    rng = np.random.default_rng(n)
    # from DRIFT_AT on the scores move up for good: the model's inputs changed
    scores = rng.beta(3, 4, 400) if n >= DRIFT_AT else rng.beta(2, 5, 400)
    path = settings.home / "landing" / NAME / f"{NAME}_{day(n)}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,score\n" + "".join(f"{i},{s:.5f}\n" for i, s in enumerate(scores)))
    arrived = steps.live_morning(day(n)).timestamp() - 5 * 3600
    os.utime(path, (arrived, arrived))


def run(sessions, settings, first: int, last: int, deliver=deliver):
    for n in range(first, last + 1):
        deliver(settings, n)
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path), settings.home)
        dataset = session.scalar(select(Dataset).where(Dataset.name == NAME))
        queued = Run(dataset_id=dataset.id, trigger="schedule", partition_from=day(first),
                     partition_to=day(last), requested_by="test")
        session.add(queued)
        session.flush()
        run_id = queued.id
    execute_run(sessions, settings, run_id, now=steps.live_morning(day(last)), notify=False)


def drift_alerts(sessions) -> list[Alert]:
    with sessions() as session:
        return list(session.scalars(select(Alert).where(Alert.monitor == "drift:score")
                                    .order_by(Alert.id)))


def test_the_recent_window_alone_forgets_a_persistent_drift(settings, sessions):
    write(settings, default_reference_weeks=0)  # no reference at all
    run(sessions, settings, 0, DAYS - 1)
    [alert] = drift_alerts(sessions)
    assert alert.status == "resolved" and alert.resolution == "auto"


def test_without_config_a_persistent_drift_stays_open_against_the_first_weeks(settings, sessions):
    write(settings)  # nothing pinned: the first 4 weeks (days 0-27) are the reference
    run(sessions, settings, 0, DAYS - 1)
    [alert] = drift_alerts(sessions)
    assert alert.status == "open"
    assert alert.occurrences >= DAYS - DRIFT_AT - 1
    # named as what it is: nobody pinned it
    assert f"the default reference {day(0)}..{day(DRIFT_AT - 1)}" in alert.message
    assert f"; default reference {day(0)}..{day(DRIFT_AT - 1)}" in describe(alert.judged_on)


def test_a_young_dataset_has_no_default_reference_yet(settings, sessions):
    write(settings)
    run(sessions, settings, 0, 20)  # three weeks: fewer partitions than the default window
    with sessions() as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == NAME))
        assert not load_references(session, dataset.id, load_config(settings.config_path).dataset(NAME))


def test_a_run_before_the_default_reference_was_complete_replays_identical(settings, sessions):
    # the scores move inside the first four weeks. The daily run of day 21 had no default
    # reference yet (22 partitions) and its recent batches had moved too: no drift. Once day
    # 27 lands the first four weeks are a reference; the replay must not judge day 21 with
    # them cut at the partition (a drift the run never saw, called unexplained)
    def early(settings, n):
        deliver(settings, n)
        if n >= 14:
            path = settings.home / "landing" / NAME / f"{NAME}_{day(n)}.csv"
            scores = np.random.default_rng(n).beta(5, 2, 400)
            path.write_text("id,score\n" + "".join(f"{i},{s:.5f}\n" for i, s in enumerate(scores)))
            arrived = steps.live_morning(day(n)).timestamp() - 5 * 3600
            os.utime(path, (arrived, arrived))

    write(settings)
    run(sessions, settings, 0, 20, deliver=early)
    run(sessions, settings, 21, 21, deliver=early)
    run(sessions, settings, 22, 27, deliver=early)
    with sessions() as session:
        day_21 = session.scalar(select(Run.id).where(Run.partition_from == day(21)))
        replay = replay_run(session, settings, day_21)
    assert replay.identical, replay.differences


def test_a_pinned_reference_keeps_a_persistent_drift_open_until_accepted(settings, sessions):
    write(settings, references=[{"column": "score", "first": 14}])
    run(sessions, settings, 0, DAYS - 1)
    [alert] = drift_alerts(sessions)
    assert alert.status == "open"
    assert alert.occurrences >= DAYS - DRIFT_AT - 1
    assert "pinned reference" in alert.message

    with sessions.begin() as session:
        marker = accept(session, alert.id, by="ana", note="new model inputs are the norm")
        assert marker.from_partition == day(DRIFT_AT)
    run(sessions, settings, DAYS, DAYS + 9)
    [after] = drift_alerts(sessions)
    assert (after.status, after.resolution) == ("resolved", "expected")


def test_an_alert_names_the_pinned_reference_and_the_accepted_new_normal_it_was_judged_on(
        settings, sessions):
    write(settings, references=[{"column": "score", "first": 14}])
    run(sessions, settings, 0, DAYS - 1)
    [alert] = drift_alerts(sessions)
    assert alert.judged_on["reference"] == {"from": day(0).isoformat(), "to": day(13).isoformat(),
                                            "kind": "pinned reference", "moved_to": None}
    assert "baseline" not in alert.judged_on
    assert f"; pinned reference {day(0)}..{day(13)}" in describe(alert.judged_on)
    assert replays_identical(sessions, settings)  # judged against the reference again
    with sessions.begin() as session:
        accept(session, alert.id, by="ana", note="new model inputs")

    second = DAYS + 3

    def moves_again(settings, n):  # the scores move up once more, after the accepted level
        deliver(settings, n)
        if n >= second:
            path = settings.home / "landing" / NAME / f"{NAME}_{day(n)}.csv"
            scores = np.random.default_rng(n).beta(6, 2, 400)
            path.write_text("id,score\n" + "".join(f"{i},{s:.5f}\n" for i, s in enumerate(scores)))
            arrived = steps.live_morning(day(n)).timestamp() - 5 * 3600
            os.utime(path, (arrived, arrived))
    run(sessions, settings, DAYS, second + 2, deliver=moves_again)
    with sessions() as session:
        judged = session.scalars(select(Alert).where(Alert.monitor == "drift:score")
                                 .order_by(Alert.last_seen_at.desc())).first().judged_on
    assert judged["baseline"] == {"from": day(DRIFT_AT).isoformat(), "by": "ana",
                                  "note": "new model inputs", "alert_id": alert.id}
    assert judged["reference"]["moved_to"] == day(DRIFT_AT).isoformat()
    line = describe(judged)
    assert f"; new normal accepted from {day(DRIFT_AT)} by ana (new model inputs)" in line
    assert f"moved to the new normal from {day(DRIFT_AT)}" in line
    assert replays_identical(sessions, settings)  # the first run without the marker, the second with it


def replays_identical(sessions, settings) -> bool:
    with sessions() as session:
        replays = [replay_run(session, settings, run_id)
                   for run_id in session.scalars(select(Run.id).order_by(Run.id))]
    assert replays and all(r.findings for r in replays)
    return all(r.identical for r in replays)


@pytest.mark.parametrize("reference, words", [
    ({"from": "2026-03-01"}, "either `from` and `to`"),
    ({"first": 5, "from": "2026-03-01", "to": "2026-03-09"}, "either `from` and `to`"),
    ({"from": "2026-03-09", "to": "2026-03-01"}, "is after"),
])
def test_a_reference_is_a_date_range_or_a_first_n(reference, words):
    text = yaml.safe_dump({"datasets": [{"name": "x", "format": "csv", "source": "x",
                                         "references": [reference]}]})
    with pytest.raises(ConfigError, match=words):
        parse_config(text)
