"""Realised performance: stored per partition and model version when the labels land, equal
to scikit-learn's figures on the same joined rows; the performance monitors alert on the day
a concept change's labels land; the CLI reports it."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.calibration import calibration_curve

from monitors.cli import main
from monitors.intake.freshness import partition_day_end
from monitors.lifecycle import alerts
from store import queries
from tests.monitors import labelled
from tests.monitors.labelled import DELAY, day, outcomes, predictions


def stored(sessions, dataset: str, partition: dt.date) -> pd.DataFrame:
    with sessions() as session:
        found = queries.get_dataset(session, dataset)
        return queries.read_metrics(session, found.id, since=partition, until=partition)


def figure(frame: pd.DataFrame, metric: str, key: str = "") -> float:
    match = frame[(frame["metric"] == metric) & (frame["key"] == key)]["value"]
    assert len(match) == 1, f"{metric}[{key}]: {len(match)} value(s)"
    return float(match.iloc[0])


def expected_calibration_error(y: np.ndarray, score: np.ndarray, bins: int = 10) -> float:
    """ECE from scikit-learn's reliability curve, weighted by the rows of each bin."""
    prob_true, prob_pred = calibration_curve(y, score, n_bins=bins, strategy="uniform")
    ids = np.searchsorted(np.linspace(0, 1, bins + 1)[1:-1], score)
    rows = np.bincount(ids, minlength=bins)
    rows = rows[rows > 0]
    return float(np.sum(rows / len(y) * np.abs(prob_true - prob_pred)))


def test_realised_figures_equal_scikit_learns_on_the_joined_rows(settings, sessions):
    labelled.setup(settings, sessions)
    scores = predictions(0)
    # a quarter of the predictions get no outcome (coverage), and two outcomes match nothing
    truth = outcomes(scores, 0).iloc[: 3 * len(scores) // 4]
    truth = pd.concat([truth, pd.DataFrame({"id": [-1, -2], "bought": [1, 0]})])
    labelled.write(settings.home, "scores", day(0), scores)
    assert main(["ingest", "--dataset", "scores",
                 str(settings.home / "landing/scores" / f"scores_{day(0)}.csv")]) == 0
    path = labelled.write(settings.home, "outcomes", day(0), truth)
    assert main(["ingest", "--dataset", "outcomes", str(path)]) == 0

    frame = stored(sessions, "scores", day(0))
    joined = scores.merge(truth, on="id", how="inner")
    for version in ("", "v1", "v2"):
        rows = joined if version == "" else joined[joined["model_version"] == version]
        y, score = rows["bought"].to_numpy(), rows["score"].to_numpy()
        assert figure(frame, "auc", version) == pytest.approx(metrics.roc_auc_score(y, score))
        assert figure(frame, "average_precision", version) == pytest.approx(
            metrics.average_precision_score(y, score))
        assert figure(frame, "brier", version) == pytest.approx(metrics.brier_score_loss(y, score))
        assert figure(frame, "log_loss", version) == pytest.approx(metrics.log_loss(y, score))
        assert figure(frame, "ece", version) == pytest.approx(expected_calibration_error(y, score))
        assert figure(frame, "f1", version) == pytest.approx(metrics.f1_score(y, score >= 0.5))
        assert figure(frame, "recall", version) == pytest.approx(metrics.recall_score(y, score >= 0.5))
        assert figure(frame, "positive_rate", version) == pytest.approx(y.mean())
        scope = scores if version == "" else scores[scores["model_version"] == version]
        assert figure(frame, "coverage", version) == pytest.approx(len(rows) / len(scope))
    assert figure(frame, "unmatched_labels") == 2
    # the score histograms per outcome hold every labelled row once
    positives = frame[(frame["metric"] == "hist_positive") & frame["key"].str.startswith("#")]
    assert positives["value"].sum() == joined["bought"].sum()


def test_a_concept_change_raises_a_performance_alert_the_day_its_labels_land(settings, sessions):
    changed = 10
    labelled.play(settings, sessions, 13, concept_change=changed)
    with sessions() as session:
        raised = [a for a in alerts.list_alerts(session, dataset="scores")
                  if a["monitor"].startswith("performance:") and "estimated" not in a["monitor"]]
    assert {a["partition"] for a in raised} == {day(changed).isoformat()}
    assert "performance:auc_drop" in {a["monitor"] for a in raised}
    # seen on the day the labels landed, DELAY days after the scoring, not before
    landed = partition_day_end(day(changed + DELAY))
    assert all(dt.datetime.fromisoformat(a["first_seen_at"]) > landed for a in raised)


def test_the_cli_reports_realised_and_estimated_performance_per_version(settings, sessions, capsys):
    labelled.play(settings, sessions, 8)
    capsys.readouterr()
    assert main(["performance", "--dataset", "scores", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"partition", "model_version", "auc", "average_precision", "brier", "log_loss", "ece",
            "precision", "recall", "f1", "positive_rate", "coverage", "estimated_auc",
            "labelled"} <= set(rows[0])
    by_partition = {}
    for row in rows:
        by_partition.setdefault(row["partition"], {})[row["model_version"]] = row
    # labels are in for every day but the last DELAY ones; each has all versions and each one
    labelled_days = [day(i).isoformat() for i in range(8 - DELAY)]
    assert sorted(p for p, v in by_partition.items() if v[None]["labelled"]) == labelled_days
    assert all(set(by_partition[p]) == {None, "v1", "v2"} for p in labelled_days)
    waiting = by_partition[day(7).isoformat()][None]
    assert waiting["auc"] is None and waiting["estimated_auc"] is not None
    assert 0.5 < waiting["estimated_auc"] < 1

    assert main(["performance", "--dataset", "scores", "--version", "v2", "--json"]) == 0
    assert {r["model_version"] for r in json.loads(capsys.readouterr().out)} == {"v2"}
    assert main(["performance", "--dataset", "scores", "--version", "v9"]) == 2
    assert "no model version 'v9'" in capsys.readouterr().err
    assert main(["performance", "--dataset", "outcomes"]) == 2


@pytest.mark.parametrize("ranking_lost", [True, False])
def test_an_estimated_drop_is_confirmed_or_resolved_when_the_labels_land(
        settings, sessions, ranking_lost):
    """On day 14 the model's scores are squeezed towards the base rate: from calibration the
    estimate expects a worse ranking and alerts before the labels. The outcomes then either
    follow the squeezed scores (the drop is real: confirmed) or the usual probabilities (the
    scores were only miscalibrated, their order held: resolved)."""
    squeezed = 14
    original = predictions(squeezed)
    logit = np.log(original["score"] / (1 - original["score"]))
    # the scores pulled to the middle, in the same order
    squeezed_scores = original.assign(score=(1 / (1 + np.exp(-0.25 * logit))).round(6))

    def scored(index):
        return squeezed_scores if index == squeezed else None

    def resolve(frame, index):
        if index != squeezed:
            return None
        probability = (squeezed_scores if ranking_lost else original)["score"]
        bought = (np.random.default_rng(9).random(len(frame)) < probability).astype(int)
        return pd.DataFrame({"id": frame["id"], "bought": bought})

    labelled.play(settings, sessions, squeezed + 1 + DELAY, scored=scored, resolve=resolve)
    with sessions() as session:
        raised = [a for a in alerts.list_alerts(session, dataset="scores", status=None)
                  if a["monitor"] == "performance:estimated_auc_drop"]
    assert [a["partition"] for a in raised] == [day(squeezed).isoformat()]
    alert = raised[0]
    # raised by the scoring day's run, before its labels landed
    assert dt.datetime.fromisoformat(alert["first_seen_at"]) < partition_day_end(day(squeezed + 1))
    if ranking_lost:
        assert alert["status"] == "open" and "[confirmed by the labels]" in alert["message"]
    else:
        assert alert["status"] == "resolved"


def test_a_versions_lasting_fall_in_auc_is_one_breakout_alert_and_names_the_version(
        settings, sessions):
    """From day 20 on, version v2's outcomes no longer follow its scores (its ranking is
    lost for good) while v1 keeps working: v2's AUC, and with it the overall AUC, settles
    at a new level. Each level change is one breakout alert, judged on the day's labels;
    v2's alerts say it is v2, and v1 raises nothing."""
    changed, days = 20, 34

    def resolve(frame, index):
        if index < changed:
            return None
        truth = outcomes(frame, index)
        v2 = (frame["model_version"] == "v2").to_numpy()
        lost = outcomes(frame.assign(score=np.random.default_rng(index).permutation(
            frame["score"].to_numpy())), index)
        truth.loc[v2, "bought"] = lost.loc[v2, "bought"]
        return truth

    labelled.play(settings, sessions, days, resolve=resolve)
    with sessions() as session:
        raised = [a for a in alerts.list_alerts(session, dataset="scores")
                  if a["monitor"].startswith("performance:") and "estimated" not in a["monitor"]]
    by_monitor = {}
    for alert in raised:
        by_monitor.setdefault(alert["monitor"], []).append(alert)
    [v2_breakout] = by_monitor["performance:auc_breakouts [v2]"]
    [overall_breakout] = by_monitor["performance:auc_breakouts"]
    assert "model version v2" in v2_breakout["message"]
    assert dt.date.fromisoformat(overall_breakout["partition"]) >= day(changed)
    assert "performance:auc_drop [v2]" in by_monitor
    assert not [m for m in by_monitor if m.endswith("[v1]")], sorted(by_monitor)
    # nothing was raised before the change's labels landed
    # (a version's daily AUC, on a hundred rows, is noisy: a one-day drop may fire before
    # the change; a level change may not)
    early = [(a["monitor"], a["partition"]) for a in raised if "breakouts" in a["monitor"]
             and dt.date.fromisoformat(a["partition"]) < day(changed)]
    assert not early, early


def test_each_version_is_estimated_before_its_labels_land(settings, sessions, capsys):
    """On the last day v2's scores are squeezed towards the base rate (their order kept),
    v1's are as usual: before any label of that day lands, v2's estimated AUC falls below
    v1's, which stays where v1's realised AUC has been."""
    last = 9
    original = predictions(last)
    v2 = original["model_version"] == "v2"
    logit = np.log(original["score"] / (1 - original["score"]))
    squeezed = original.assign(score=np.where(v2, (1 / (1 + np.exp(-0.25 * logit))).round(6),
                                              original["score"]))
    labelled.play(settings, sessions, last + 1, scored=lambda i: squeezed if i == last else None)
    capsys.readouterr()
    assert main(["performance", "--dataset", "scores", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    waiting = {r["model_version"]: r for r in rows if r["partition"] == day(last).isoformat()}
    assert not waiting["v1"]["labelled"] and not waiting["v2"]["labelled"]
    assert waiting["v2"]["estimated_auc"] < waiting["v1"]["estimated_auc"] - 0.05
    realised_v1 = [r["auc"] for r in rows if r["model_version"] == "v1" and r["labelled"]]
    assert abs(waiting["v1"]["estimated_auc"] - float(np.median(realised_v1))) < 0.05
    assert waiting["v2"]["estimated_auc_lower"] <= waiting["v2"]["estimated_auc"] \
        <= waiting["v2"]["estimated_auc_upper"]
