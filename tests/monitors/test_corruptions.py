"""Single-batch corruptions a monitor must catch on the day they land, on the right column,
with the automatic monitors alone (a dataset declared with no monitor config), judged from
the stored profiles only.

History: 59 seeded clean days of a customer snapshot; day 60 is corrupted one way per case
(or left clean: the control raises nothing)."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitors.contract import infer_contract
from monitors.intake.profile import profile_table
from monitors.judge.evaluate import MetricHistory, evaluate_metric, metrics_read_by
from monitors.judge.plan import plan_monitors

FIRST = dt.date(2026, 3, 2)
DAYS = 60
# one worker profiles the 59 clean days (clean_history) for every test here
pytestmark = pytest.mark.xdist_group("corruptions")
TODAY = FIRST + dt.timedelta(days=DAYS - 1)
SEGMENTS = ["individual", "university", "vip"]
PROVINCES = ["Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao"]
WEEKLY = [1.0, 1.03, 1.04, 1.02, 0.97, 0.74, 0.66]


def clean_day(index: int) -> pd.DataFrame:
    day = FIRST + dt.timedelta(days=index)
    rng = np.random.default_rng(1000 + index)
    rows = int(1500 * WEEKLY[day.weekday()] * rng.normal(1, 0.02))
    income = rng.lognormal(10.3, 0.5, rows).round(2)
    return pd.DataFrame({
        "customer_id": rng.choice(5_000_000, rows, replace=False).astype(np.int64),
        "snapshot_date": [day] * rows,
        "age": np.clip(rng.normal(44, 14, rows), 18, 95).astype(np.int64),
        "seniority_months": rng.integers(0, 300, rows),
        "income": np.where(rng.random(rows) < 0.05, np.nan, income),
        "segment": rng.choice(SEGMENTS, rows, p=[0.6, 0.32, 0.08]),
        "province": rng.choice(PROVINCES, rows, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
        "active": rng.random(rows) < 0.55,
    })


def _duplicate_keys(frame: pd.DataFrame) -> pd.DataFrame:
    ids = frame["customer_id"].to_numpy().copy()
    ids[-150:] = ids[:150]  # 150 rows carry another row's key
    return frame.assign(customer_id=ids)


CORRUPTIONS: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], set[str | None]]] = {
    "sign flip": (lambda f: f.assign(income=-f["income"]), {"income"}),
    "unit change x12": (lambda f: f.assign(age=f["age"] * 12), {"age"}),
    "unit change /1000": (lambda f: f.assign(income=(f["income"] / 1000).round(2)), {"income"}),
    "constant column": (lambda f: f.assign(seniority_months=120), {"seniority_months"}),
    "duplicated keys": (_duplicate_keys, {"customer_id"}),
    "columns swapped": (lambda f: f.assign(age=f["seniority_months"], seniority_months=f["age"]),
                        {"age", "seniority_months"}),
    "upper-cased categories": (lambda f: f.assign(province=f["province"].str.upper()),
                               {"province"}),
    "segment disappears": (lambda f: f[f["segment"] != "vip"].reset_index(drop=True), {"segment"}),
    # yesterday's file, as it was, delivered as today's
    "re-delivered": (lambda f: clean_day(DAYS - 2), {None}),
}


def _metrics(frame: pd.DataFrame, partition: dt.date, contract) -> pd.DataFrame:
    table = pa.Table.from_pandas(frame, preserve_index=False).cast(contract.arrow_schema())
    found = profile_table(table, categorical=contract.categorical())
    return pd.DataFrame([(pd.Timestamp(partition), m.column, m.metric, m.key, m.value)
                         for m in found], columns=["partition", "column", "metric", "key", "value"])


@pytest.fixture(scope="module")
def clean_history():
    """The contract inferred from day one (a new dataset, no config), its monitors, and the
    stored metrics of the 59 clean days before today."""
    first = pa.Table.from_pandas(clean_day(0), preserve_index=False)
    contract = infer_contract(first.schema)
    specs = [s for s in plan_monitors("data", contract, None) if s.kind == "metric"]
    days = [_metrics(clean_day(i), FIRST + dt.timedelta(days=i), contract) for i in range(DAYS - 1)]
    return contract, specs, pd.concat(days, ignore_index=True)


def judge_today(clean_history, today: pd.DataFrame):
    contract, specs, past = clean_history
    frame = pd.concat([past, _metrics(today, TODAY, contract)], ignore_index=True)
    frame = frame[frame["metric"].isin(metrics_read_by(specs))]
    history = MetricHistory(frame)
    verdicts = [evaluate_metric(spec, history, TODAY) for spec in specs]
    assert not [v for v in verdicts if v.failed], [v.finding.detail for v in verdicts if v.failed]
    return [v for v in verdicts if v.finding is not None]


def test_a_clean_batch_raises_nothing(clean_history):
    fired = judge_today(clean_history, clean_day(DAYS - 1))

    assert [(v.spec.name, v.finding.detail) for v in fired] == []


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_a_corrupted_batch_is_caught_on_its_column_the_day_it_lands(clean_history, case):
    corrupt, columns = CORRUPTIONS[case]

    fired = judge_today(clean_history, corrupt(clean_day(DAYS - 1)))

    caught = {v.spec.column for v in fired}
    assert caught == columns, [(v.spec.name, v.finding.detail) for v in fired]
    for verdict in fired:
        # the alert names the column it is about (the table-level repeat names the batch)
        assert verdict.spec.column is None or verdict.spec.column in verdict.finding.detail


def test_the_message_says_what_changed_in_words(clean_history):
    corrupt, _ = CORRUPTIONS["sign flip"]

    fired = judge_today(clean_history, corrupt(clean_day(DAYS - 1)))

    profile = next(v.finding.detail for v in fired if v.spec.name == "profile:income")
    assert profile.startswith("[profile] income: mean -")
    assert "vs expected" in profile and "±" in profile
    assert "negative share 100% (was 0%)" in profile


def test_an_identifier_gets_no_level_or_distribution_monitor(clean_history):
    # customer_id is near-unique in every batch and named like an identifier: its level, its
    # profile and its distribution are skipped with that reason; duplicates (and nulls) watch it
    contract, specs, past = clean_history
    history = MetricHistory(pd.concat([past, _metrics(clean_day(DAYS - 1), TODAY, contract)]))
    judged = {spec.name: evaluate_metric(spec, history, TODAY)
              for spec in specs if spec.column == "customer_id"}

    assert set(judged) >= {"level:customer_id", "profile:customer_id", "drift:customer_id",
                           "duplicates:customer_id"}
    assert judged["duplicates:customer_id"].skipped is None
    assert judged["duplicates:customer_id"].finding is None
    for name in ("level:customer_id", "profile:customer_id", "drift:customer_id"):
        assert "identifier" in (judged[name].skipped or ""), name


def test_the_clean_history_itself_stays_quiet(clean_history):
    """Every automatic monitor over the 10 clean days before today: at most one finding."""
    _, specs, past = clean_history
    history = MetricHistory(past[past["metric"].isin(metrics_read_by(specs))])
    fired = [(day, spec.name, verdict.finding.detail)
             for day in pd.date_range(TODAY - dt.timedelta(days=10), TODAY - dt.timedelta(days=1)).date
             for spec in specs
             if (verdict := evaluate_metric(spec, history, day)).finding is not None]

    assert len(fired) <= 1, fired


def test_the_demos_corruptions_raise_alerts_on_their_column_the_day_they_land(demo, sessions):
    """The demo's ground truth holds single-batch corruptions; each raised an alert on its
    column for its partition, saying what changed."""
    import json

    from monitors.lifecycle.alerts import get_alert, list_alerts

    truth = json.loads((demo.home / "demo" / "incidents.json").read_text())
    corruptions = [i for i in truth if i["kind"] in ("sign_flip", "unit_change", "duplicated_keys")]
    assert {i["kind"] for i in corruptions} == {"sign_flip", "unit_change", "duplicated_keys"}
    with sessions() as session:
        alerts = [{**a, "firings": {f["partition"] for f in get_alert(session, a["id"])["firings"]}}
                  for a in list_alerts(session, dataset="customer_snapshot")]

    for incident in corruptions:
        hits = [a for a in alerts if a["column"] == incident["column"]
                and incident["partition"] in a["firings"]]
        assert hits, incident
        assert all(incident["column"] in a["message"] for a in hits)
