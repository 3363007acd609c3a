"""Labels as a dataset: a batch that does not resolve predictions is quarantined with the
reason and stores nothing; the config links a model output to its labels; labels are
scheduled, and judged fresh, days after their partition."""
from __future__ import annotations

import copy
import datetime as dt

import pandas as pd
import pytest

from monitors.cli import main
from monitors.config import ConfigError, parse_config
from monitors.intake.freshness import partition_day_end
from monitors.lifecycle import alerts
from monitors.pipeline import queue
from store import queries
from tests.monitors import labelled
from tests.monitors.labelled import CONFIG, DELAY, day, outcomes, predictions


def land_scores(settings, index: int = 0) -> pd.DataFrame:
    scores = predictions(index)
    path = labelled.write(settings.home, "scores", day(index), scores)
    assert main(["ingest", "--dataset", "scores", str(path)]) == 0
    return scores


def nothing_stored(sessions) -> None:
    with sessions() as session:
        labels = queries.get_dataset(session, "outcomes")
        model = queries.get_dataset(session, "scores")
        assert queries.list_partitions(session, labels.id) == []
        performance = queries.read_metrics(session, model.id, metrics=["auc", "labelled", "coverage"])
        assert performance.empty


@pytest.mark.parametrize("broken, reason", [
    ("repeated", "2 key(s) appear more than once (first: id="),
    ("unmatched", "none of the 300 label row(s) matches a prediction of 2026-03-02 on id"),
    ("not_binary", "value(s) of 'bought' are neither 0 nor 1"),
])
def test_a_labels_batch_that_resolves_no_prediction_is_quarantined_and_stores_nothing(
        settings, sessions, capsys, broken, reason):
    labelled.setup(settings, sessions)
    scores = land_scores(settings)
    truth = outcomes(scores, 0)
    if broken == "repeated":
        truth = pd.concat([truth, truth.iloc[[5, 9]]])
    elif broken == "unmatched":
        truth = truth.assign(id=truth["id"] + 10_000)
    else:
        truth.loc[3, "bought"] = 2
    path = labelled.write(settings.home, "outcomes", day(0), truth)
    capsys.readouterr()
    assert main(["ingest", "--dataset", "outcomes", str(path)]) == 3
    assert reason in capsys.readouterr().err
    with sessions() as session:
        (batch, _), = queries.list_batches(session, queries.get_dataset(session, "outcomes").id)
        assert batch.status == "quarantined" and reason in batch.reason
    nothing_stored(sessions)


def test_labels_for_a_partition_without_predictions_are_quarantined(settings, sessions, capsys):
    labelled.setup(settings, sessions)
    path = labelled.write(settings.home, "outcomes", day(0), outcomes(predictions(0), 0))
    assert main(["ingest", "--dataset", "outcomes", str(path)]) == 3
    assert "no predictions of 2026-03-02 are in force" in capsys.readouterr().err
    nothing_stored(sessions)


def test_a_corrected_labels_batch_replaces_the_figures_of_the_one_before(settings, sessions):
    labelled.setup(settings, sessions)
    scores = land_scores(settings)
    first = labelled.write(settings.home, "outcomes", day(0), outcomes(scores, 0))
    assert main(["ingest", "--dataset", "outcomes", str(first)]) == 0
    corrected = outcomes(scores, 0).iloc[:100]
    path = labelled.write(settings.home, "outcomes", day(0), corrected)
    assert main(["ingest", "--dataset", "outcomes", str(path)]) == 0
    with sessions() as session:
        model = queries.get_dataset(session, "scores")
        coverage = queries.read_metrics(session, model.id, metrics=["coverage"])
    overall = coverage[coverage["key"] == ""]["value"].tolist()
    assert overall == [pytest.approx(100 / len(scores))]


def test_the_config_links_a_model_output_to_a_declared_labels_dataset():
    config = parse_config(_yaml(CONFIG))
    assert config.dataset("scores").labels.keys() == ["id"]

    unknown = copy.deepcopy(CONFIG)
    unknown["datasets"][0]["labels"]["dataset"] = "nowhere"
    with pytest.raises(ConfigError, match="labels.dataset 'nowhere' is not a declared dataset of kind labels"):
        parse_config(_yaml(unknown))
    on_data = copy.deepcopy(CONFIG)
    on_data["datasets"][0]["kind"] = "data"
    with pytest.raises(ConfigError, match="only a model output"):
        parse_config(_yaml(on_data))
    early = copy.deepcopy(CONFIG)
    early["datasets"][1]["deadline_hours"] = 6
    with pytest.raises(ConfigError, match="shorter than the 2 day"):
        parse_config(_yaml(early))


def test_labels_are_scheduled_up_to_the_partition_that_can_have_arrived(settings, sessions):
    labelled.setup(settings, sessions)
    today = day(10)
    with sessions.begin() as session:
        model = queries.get_dataset(session, "scores")
        labels = queries.get_dataset(session, "outcomes")
        scored = queue.request_catch_up(session, model, today=today)
        resolved = queue.request_catch_up(session, labels, today=today)
    assert [r.partition_to for r in scored] == [today - dt.timedelta(days=1)]
    assert [r.partition_to for r in resolved] == [today - dt.timedelta(days=1 + DELAY)]


def test_late_labels_raise_a_freshness_alert_of_the_labels(settings, sessions):
    labelled.setup(settings, sessions)
    scores = land_scores(settings)
    # due 2 days and 6 hours after the scored day ended; they come a day after that
    arrived = partition_day_end(day(0)) + dt.timedelta(days=DELAY + 1)
    # the system watches the labels from the scored day on (lateness is judged only for
    # partitions due while it was watching: monitors.intake.freshness)
    labelled.run(settings, sessions, "outcomes", day(0), partition_day_end(day(0)))
    labelled.write(settings.home, "outcomes", day(0), outcomes(scores, 0), arrived=arrived)
    labelled.run(settings, sessions, "outcomes", day(0), arrived + dt.timedelta(hours=2))
    with sessions() as session:
        raised = alerts.list_alerts(session, dataset="outcomes")
    assert [a["monitor"] for a in raised] == ["freshness:late"]


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data)
