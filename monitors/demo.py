"""The demo factory: a retail bank's daily customer snapshot and its propensity model's
scores, delivered as files into a landing folder the way an upstream system would, with
incidents injected on known dates and written down as ground truth.

Deterministic under a seed and an end date: the same arguments write the same bytes.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session, sessionmaker

from monitors.catalog import sync_datasets
from monitors.config import (
    AutomaticMonitors,
    DatasetConfig,
    GateConfig,
    MonitorsConfig,
    load_config,
    save_config,
)
from monitors.contract import ColumnSpec, Contract
from monitors.intake.freshness import partition_day_end
from monitors.intake.labels import LabelsConfig
from monitors.pipeline.run import execute_run
from monitors.pipeline.stages import run_due_stages
from monitors.settings import Settings
from monitors.stage_config import StageConfig
from store.models import Run

CUSTOMERS = "customer_snapshot"
SCORES = "model_scores"
OUTCOMES = "model_outcomes"
# the model's outcomes (did the customer buy?) are known this many days after scoring
LABEL_DELAY_DAYS = 7
POPULATION = 200_000
BASE_ROWS = 2_000
GROWTH_PER_DAY = 0.003
# Monday..Sunday: branch-driven activity dips at the weekend
WEEKLY = np.array([1.0, 1.03, 1.04, 1.02, 0.97, 0.74, 0.66])
SEGMENTS = ["individual", "university", "vip"]
CHANNELS = ["branch", "online", "mobile", "phone"]
PROVINCES = ["Madrid", "Barcelona", "Valencia", "Sevilla", "Malaga", "Bilbao", "Zaragoza",
             "Murcia", "Alicante", "Coruna"]
USUAL_ARRIVAL_HOURS = 2.0     # after the partition's day ends
DEADLINE_HOURS = 6.0
# the demo's runs happen this long after a partition's day ends: after every delivery,
# the late one included, so each day is judged on what had arrived
RUN_AFTER_HOURS = 18.0
# the upstream fixes its filter bug and redelivers the volume drop's snapshot (and the model
# rescores it) this many days later; the demo reruns the partition, which releases its gate
CORRECTION_AFTER_DAYS = 3
# the pipeline's stages on the scores (monitors/demo_stages.py): score the verified
# partition, then deliver it to MONITORS_HOME/outbox; both held while its gate is closed
STAGES_SCRIPT = Path(__file__).with_name("demo_stages.py")


def demo_stages() -> list[StageConfig]:
    # -I: the script's folder (monitors/, whose queue.py would shadow the standard
    # library's) is not put on the stage's import path
    script = f"{shlex.quote(sys.executable)} -I {shlex.quote(str(STAGES_SCRIPT))}"
    return [StageConfig(name="score", run=f"{script} score", timeout="5m", retries=1),
            StageConfig(name="deliver", run=f"{script} deliver", timeout="5m", retries=1)]


@dataclass(frozen=True, slots=True)
class Incident:
    dataset: str
    column: str | None
    partition: str
    kind: str
    description: str
    # how many partitions it lasts when it is over after a few (the concept change, the
    # calibration break); lasting kinds (a level shift) last to the span's end
    days: int = 1
    # where else it shows, because the demo's data are made from one another: a
    # (dataset, column) whose alerts it causes, e.g. the class a score crosses into, or
    # the outcomes of scores that never arrived. Not incidents of their own to catch.
    effects: tuple[tuple[str, str | None], ...] = ()
    # the partition when its data is redelivered corrected ("YYYY-MM-DD"), if it is
    corrected_on: str | None = None


def demo_config() -> MonitorsConfig:
    """The demo's datasets with declared contracts, as a user would write them."""
    customers = Contract(columns=[
        ColumnSpec(name="customer_id", type="integer", nullable=False, sensitive=True),
        ColumnSpec(name="snapshot_date", type="date", nullable=False),
        ColumnSpec(name="age", type="integer"),
        ColumnSpec(name="seniority_months", type="integer"),
        ColumnSpec(name="income", type="float"),
        ColumnSpec(name="segment", type="string"),
        ColumnSpec(name="channel", type="string"),
        ColumnSpec(name="province", type="string"),
        ColumnSpec(name="active", type="boolean"),
        ColumnSpec(name="products_held", type="integer"),
    ])
    scores = Contract(columns=[
        ColumnSpec(name="customer_id", type="integer", nullable=False, sensitive=True),
        ColumnSpec(name="score_date", type="date", nullable=False),
        ColumnSpec(name="score", type="float", nullable=False),
        ColumnSpec(name="predicted_class", type="string", nullable=False),
        ColumnSpec(name="model_version", type="string", nullable=False),
    ])
    outcomes = Contract(columns=[
        ColumnSpec(name="customer_id", type="integer", nullable=False, sensitive=True),
        ColumnSpec(name="score_date", type="date", nullable=False),
        ColumnSpec(name="bought", type="integer", nullable=False),
    ])
    return MonitorsConfig(datasets=[
        DatasetConfig(name=CUSTOMERS, kind="data", format="csv", source=f"landing/{CUSTOMERS}",
                      partition_key="snapshot_date", schedule="0 7 * * *",
                      deadline_hours=DEADLINE_HOURS, contract=customers),
        DatasetConfig(name=SCORES, kind="model_output", format="parquet",
                      source=f"landing/{SCORES}", partition_key="score_date",
                      schedule="0 8 * * *", deadline_hours=DEADLINE_HOURS, contract=scores,
                      # the model scores the snapshot: a broken snapshot holds its scores
                      upstream=[CUSTOMERS], stages=demo_stages(),
                      # its stages feed the campaign system: a warning on the snapshot or
                      # the scores (a sign flip, a shift, a drift) holds them too
                      gate=GateConfig(holds_on="warning"),
                      labels=LabelsConfig(dataset=OUTCOMES, key="customer_id", label="bought",
                                          delay_days=LABEL_DELAY_DAYS, reference_days=14)),
        DatasetConfig(name=OUTCOMES, kind="labels", format="csv", source=f"landing/{OUTCOMES}",
                      partition_key="score_date", schedule="0 9 * * *",
                      deadline_hours=24 * LABEL_DELAY_DAYS + DEADLINE_HOURS, contract=outcomes,
                      # their volume follows the scores', which are watched already; what
                      # the outcomes say is judged as the model's performance
                      automatic=AutomaticMonitors(volume=False, levels=False),
                      # they resolve the scores: a broken scores partition is their incident
                      upstream=[SCORES]),
    ])


def plan_incidents(start: dt.date, days: int) -> dict[str, tuple[int, Incident]]:
    """Incidents at fixed fractions of the span, after enough history to learn from."""
    def at(fraction: float) -> tuple[int, str]:
        index = min(days - 1, max(14, int(fraction * days)))
        return index, (start + dt.timedelta(days=index)).isoformat()

    # label: (dataset, column, where in the span, kind, what happened[, days, effects])
    plan = {
        # single-batch corruptions of the snapshot file (the model was fed before the export)
        "sign_flip": (CUSTOMERS, "income", 0.30, "sign_flip", "income arrives sign-flipped for every customer (an export bug)"),
        "unit_change": (CUSTOMERS, "age", 0.40, "unit_change", "age arrives in months instead of years (x12)"),
        "duplicated_keys": (CUSTOMERS, "customer_id", 0.48, "duplicated_keys", "a tenth of the rows carry another row's customer_id"),
        "volume_drop": (CUSTOMERS, None, 0.55, "volume_drop", "the snapshot holds 40% of its usual rows (an upstream filter bug)"),
        "scores_volume_drop": (SCORES, None, 0.55, "volume_drop", "the model scored only the customers it received: its output drops with the snapshot"),
        "null_spike": (CUSTOMERS, "income", 0.62, "null_spike", "income is missing for 40% of customers (was 5%)"),
        "schema_change": (CUSTOMERS, "province", 0.70, "schema_change", "province renamed to region by the upstream"),
        "new_category": (CUSTOMERS, "channel", 0.76, "new_category", "a new channel 'partner_app' appears and stays"),
        "level_shift": (CUSTOMERS, "products_held", 0.82, "level_shift", "products held per customer jumps by one and stays (a bundling campaign)",
                        # a customer's products are in their propensity to buy: more buy
                        1, ((OUTCOMES, "bought"),)),
        "scores_level_shift": (SCORES, "score", 0.82, "level_shift", "scores rise with products held, one of the model's inputs"),
        "scores_class_mix": (SCORES, "predicted_class", 0.82, "level_shift", "with the scores, the share of predicted 'buy' rises"),
        "late_batch": (CUSTOMERS, None, 0.88, "late_batch", "the snapshot arrives 16 hours after its day ended (deadline 6 hours)"),
        "missing_batch": (SCORES, None, 0.92, "missing_batch", "the model's scores for this day never arrive",
                          # outcomes resolve delivered scores: none come for this day
                          1, ((OUTCOMES, None),)),
        "score_drift": (SCORES, "score", 0.95, "score_drift", "the model's scores shift upwards and stay shifted"),
        "class_mix_drift": (SCORES, "predicted_class", 0.95, "score_drift", "with the scores, the share of predicted 'buy' rises"),
        "model_rollout": (SCORES, "model_version", 0.35, "model_rollout", "model v2 is rolled out beside v1: it scores half the customers from now on"),
        "labels_late": (OUTCOMES, None, 0.40, "late_labels", f"the outcomes of this day's scores arrive 2 days after the {LABEL_DELAY_DAYS} they usually take"),
        "concept_change": (SCORES, None, 0.48, "concept_change", "for 5 days customers buy for reasons the model does not see: its AUC falls while its scores look as usual", 5),
        "calibration_break": (SCORES, "score", 0.66, "calibration_break", "for 3 days every score is pushed up (a bad recalibration): the ranking holds, Brier and ECE worsen",
                              # the class is the score past 0.5: more are predicted 'buy'
                              3, ((SCORES, "predicted_class"),)),
    }
    incidents = {}
    for label, (dataset, column, fraction, kind, description, *more) in plan.items():
        index, partition = at(fraction)
        incidents[label] = (index, Incident(dataset, column, partition, kind, description, *more))
    # the volume drop is the one corrected by a redelivery, when the span reaches that day
    fixed = incidents["volume_drop"][0] + CORRECTION_AFTER_DAYS
    if fixed < days:
        for label in ("volume_drop", "scores_volume_drop"):
            index, incident = incidents[label]
            incidents[label] = (index, replace(incident, corrected_on=(
                start + dt.timedelta(days=fixed)).isoformat()))
    return incidents


class DemoFactory:
    """Writes the demo's daily files. One instance per (seed, start, days)."""

    def __init__(self, landing: Path, *, days: int, seed: int, end: dt.date):
        if days < 1:
            raise ValueError(f"days must be at least 1, got {days}")
        self.landing = landing
        self.days = days
        self.start = end - dt.timedelta(days=days - 1)
        self.rng = np.random.default_rng(seed)
        self.incidents = plan_incidents(self.start, days)
        self.label_rng = np.random.default_rng([seed, 1])
        # the corrected redelivery draws from its own generator, so the other days' data
        # (drawn in order from the two above) are those of a demo without it
        self.correction_rng = np.random.default_rng([seed, 2])
        self.corrected: set[int] = set()  # days redelivered corrected
        self.truth: dict[int, np.ndarray] = {}   # scored day -> each customer's true logit
        self.scored_ids: dict[int, np.ndarray] = {}
        # the bank's customers: attributes that don't change day to day
        rng = self.rng
        self.ages = np.clip(rng.normal(44, 14, POPULATION), 18, 95).astype(np.int64)
        self.seniority = rng.integers(0, 300, POPULATION)
        self.base_income = rng.lognormal(10.3, 0.5, POPULATION).round(2)
        self.segments = rng.choice(SEGMENTS, POPULATION, p=[0.6, 0.32, 0.08])
        self.provinces = rng.choice(PROVINCES, POPULATION,
                                    p=[.25, .2, .1, .08, .07, .07, .06, .06, .06, .05])

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)

    def _incident_on(self, kind: str, index: int, persistent: bool = False) -> bool:
        first = self.incidents[kind][0]
        return index >= first if persistent else index == first

    def customers(self, index: int, *, rng: np.random.Generator | None = None,
                  corrected: bool = False) -> pd.DataFrame:
        """The day's snapshot; `corrected`: as redelivered once the volume drop was fixed."""
        rng, day = rng or self.rng, self.day(index)
        expected = BASE_ROWS * (1 + GROWTH_PER_DAY) ** index * WEEKLY[day.weekday()]
        rows = int(expected * rng.normal(1, 0.02))
        if self._incident_on("volume_drop", index) and not corrected:
            rows = int(rows * 0.4)
        ids = rng.choice(POPULATION, rows, replace=False)
        income = self.base_income[ids] * rng.normal(1, 0.02, rows)
        null_rate = 0.40 if self._incident_on("null_spike", index) else 0.05
        income = np.where(rng.random(rows) < null_rate, np.nan, income.round(2))
        channel_p = [0.38, 0.30, 0.24, 0.08]
        channels = CHANNELS
        if self._incident_on("new_category", index, persistent=True):
            channels, channel_p = [*CHANNELS, "partner_app"], [0.34, 0.27, 0.22, 0.07, 0.10]
        products = 1 + np.minimum(rng.poisson(1.2, rows), 7)
        if self._incident_on("level_shift", index, persistent=True):
            products = products + 1
        frame = pd.DataFrame({
            "customer_id": ids.astype(np.int64) + 100_000,
            "snapshot_date": pd.Series([day] * rows, dtype="object"),
            "age": self.ages[ids],
            "seniority_months": self.seniority[ids] + index // 30,
            "income": income,
            "segment": self.segments[ids],
            "channel": rng.choice(channels, rows, p=channel_p),
            "province": self.provinces[ids],
            "active": rng.random(rows) < 0.55,
            "products_held": products,
        })
        if self._incident_on("schema_change", index):
            frame = frame.rename(columns={"province": "region"})
        return frame

    def corrupted(self, index: int, customers: pd.DataFrame) -> pd.DataFrame:
        """The snapshot as the export writes it: on a corruption's day, broken that way."""
        if self._incident_on("sign_flip", index):
            return customers.assign(income=-customers["income"])
        if self._incident_on("unit_change", index):
            return customers.assign(age=customers["age"] * 12)
        if self._incident_on("duplicated_keys", index):
            ids = customers["customer_id"].to_numpy().copy()
            repeated = len(ids) // 10
            ids[-repeated:] = ids[:repeated]
            return customers.assign(customer_id=ids)
        return customers

    def scores(self, index: int, customers: pd.DataFrame, *,
               rngs: tuple[np.random.Generator, np.random.Generator] | None = None) -> pd.DataFrame:
        rng, hidden_rng = rngs or (self.rng, self.label_rng)
        income = customers["income"].fillna(customers["income"].median())
        logit = (-1.2 + 0.35 * (customers["products_held"] - 2) + 0.4 * customers["active"]
                 + 0.25 * np.log(income / 30_000) + rng.normal(0, 0.8, len(customers)))
        # what decides a purchase besides the model's view: v2 sees some of it. Drawn from a
        # generator of their own, so the data and scores of earlier demos stay as they were
        hidden = hidden_rng.normal(0, 0.6, len(customers))
        self.truth[index] = (logit + hidden).to_numpy()
        ids = customers["customer_id"].to_numpy()
        v2 = (ids % 2 == 0) & self._incident_on("model_rollout", index, persistent=True)
        logit = logit + np.where(v2, 0.7 * hidden, 0.0)
        if self._incident_on("score_drift", index, persistent=True):
            logit = logit + 0.9
        if self._incident_window("calibration_break", index):
            logit = logit + 1.0
        score = 1 / (1 + np.exp(-logit))
        return pd.DataFrame({
            "customer_id": ids,
            "score_date": pd.Series([self.day(index)] * len(customers), dtype="object"),
            "score": score.round(6).to_numpy(),
            "predicted_class": np.where(score >= 0.5, "buy", "no_buy"),
            "model_version": np.where(v2, "v2", "v1"),
        })

    def _incident_window(self, kind: str, index: int) -> bool:
        first, incident = self.incidents[kind]
        return 0 <= index - first < incident.days

    def outcomes(self, index: int, ids: np.ndarray) -> pd.DataFrame:
        """Who bought, among the customers scored on day `index`. Under the concept change
        purchases follow another customer's propensity: the rate holds, the ranking goes."""
        truth = self.truth.pop(index)
        # a corrected day's population is another size: its own generator keeps the
        # other days' outcomes as they were
        rng = self.correction_rng if index in self.corrected else self.label_rng
        if self._incident_window("concept_change", index):
            truth = rng.permutation(truth)
        bought = rng.random(len(truth)) < 1 / (1 + np.exp(-truth))
        return pd.DataFrame({
            "customer_id": ids,
            "score_date": pd.Series([self.day(index)] * len(ids), dtype="object"),
            "bought": bought.astype(np.int64),
        })

    def labels_due(self, index: int) -> list[int]:
        """The scored days whose outcomes arrive on day `index`: the one scored
        LABEL_DELAY_DAYS before, except the late batch, which comes two days later."""
        late = self.incidents["labels_late"][0]
        due = [d for d in (index - LABEL_DELAY_DAYS,) if d >= 0 and d != late]
        return due + ([late] if index == late + LABEL_DELAY_DAYS + 2 else [])

    def arrival(self, index: int, late: bool, *,
                rng: np.random.Generator | None = None) -> dt.datetime:
        hours = 16.0 if late else USUAL_ARRIVAL_HOURS + (rng or self.rng).uniform(-0.5, 0.5)
        return partition_day_end(self.day(index)) + dt.timedelta(hours=hours)

    def deliver(self, index: int) -> list[tuple[str, Path]]:
        """Write one day's files as the upstream does; return (dataset, path) delivered."""
        day = self.day(index).isoformat()
        customers = self.customers(index)
        delivered = []
        path = self.landing / CUSTOMERS / f"{CUSTOMERS}_{day}.csv"
        _write(path, pa.Table.from_pandas(self.corrupted(index, customers), preserve_index=False), "csv",
               self.arrival(index, late=self._incident_on("late_batch", index)))
        delivered.append((CUSTOMERS, path))
        # the scores are computed on every day, delivered on all but the missing one
        scores = self.scores(index, customers.rename(columns={"region": "province"}))
        arrival = self.arrival(index, late=False) + dt.timedelta(hours=1)
        if not self._incident_on("missing_batch", index):
            path = self.landing / SCORES / f"{SCORES}_{day}.parquet"
            _write(path, pa.Table.from_pandas(scores, preserve_index=False), "parquet", arrival)
            delivered.append((SCORES, path))
        self.scored_ids[index] = scores["customer_id"].to_numpy()
        # outcomes resolve delivered scores only: a day never delivered has none to resolve
        for scored in self.labels_due(index):
            ids = self.scored_ids.pop(scored)
            outcomes = self.outcomes(scored, ids)
            if self._incident_on("missing_batch", scored):
                continue
            path = self.landing / OUTCOMES / f"{OUTCOMES}_{self.day(scored).isoformat()}.csv"
            _write(path, pa.Table.from_pandas(outcomes, preserve_index=False), "csv",
                   partition_day_end(self.day(index)) + dt.timedelta(hours=4))
            delivered.append((OUTCOMES, path))
        for fixed in self.corrections_due(index):
            delivered += self._redeliver(fixed, index)
        return delivered

    def corrections_due(self, index: int) -> list[int]:
        """The days whose corrected files the upstream redelivers on day `index`."""
        first, incident = self.incidents["volume_drop"]
        due = incident.corrected_on == self.day(index).isoformat()
        return [first] if due else []

    def _redeliver(self, fixed: int, index: int) -> list[tuple[str, Path]]:
        """Day `fixed`'s snapshot as it should have been, and the model's scores of it,
        over the files delivered then, arriving on day `index`'s usual hour."""
        rngs = (self.correction_rng, self.correction_rng)
        customers = self.customers(fixed, rng=self.correction_rng, corrected=True)
        scores = self.scores(fixed, customers, rngs=rngs)
        self.corrected.add(fixed)
        self.scored_ids[fixed] = scores["customer_id"].to_numpy()  # its outcomes follow these
        day = self.day(fixed).isoformat()
        arrival = self.arrival(index, late=False, rng=self.correction_rng)
        snapshot = self.landing / CUSTOMERS / f"{CUSTOMERS}_{day}.csv"
        _write(snapshot, pa.Table.from_pandas(customers, preserve_index=False), "csv", arrival)
        scored = self.landing / SCORES / f"{SCORES}_{day}.parquet"
        _write(scored, pa.Table.from_pandas(scores, preserve_index=False), "parquet",
               arrival + dt.timedelta(hours=1))
        return [(CUSTOMERS, snapshot), (SCORES, scored)]

    def ground_truth(self) -> list[dict]:
        return [asdict(incident) for _, incident in self.incidents.values()]


def _write(path: Path, table: pa.Table, fmt: str, arrived_at: dt.datetime) -> None:
    """Write atomically (a reader never sees half a file), stamped with its arrival time;
    never over a later delivery of the same file (the demo landed again on its own home
    keeps the corrected redelivery, as the upstream would not send the broken file again)."""
    if path.exists() and path.stat().st_mtime > arrived_at.timestamp():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if fmt == "csv":
        pacsv.write_csv(table, partial)
    else:
        pq.write_table(table, partial)
    os.replace(partial, path)
    stamp = arrived_at.timestamp()
    os.utime(path, (stamp, stamp))


def write_ground_truth(home: Path, incidents: list[dict]) -> Path:
    path = home / "demo" / "incidents.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(incidents, indent=2) + "\n", encoding="utf-8")
    return path


def default_end(now: dt.datetime | None = None) -> dt.date:
    """The newest partition whose run (RUN_AFTER_HOURS after its day ended) is already past:
    yesterday's from 18:00 UTC, the day before's until then. Nothing the demo stamps (a
    file's arrival, a run, an alert's last seen) may lie in the viewer's future."""
    now = now or dt.datetime.now(dt.UTC)
    return (now - dt.timedelta(hours=RUN_AFTER_HOURS)).date() - dt.timedelta(days=1)


def _play_stage(argv: list[str], env: dict[str, str], home: Path, out) -> int:
    """One of the demo's stages, called in this process: 240 interpreters started for
    the demo's history would double its landing time. The worker starts the same command
    as a subprocess."""
    from monitors import demo_stages as script

    if argv[1:3] != ["-I", str(STAGES_SCRIPT)]:
        raise ValueError(f"not one of the demo's stages: {shlex.join(argv)}")
    return script.main(argv[3:], env, out, home)


ProgressFn = Callable[[int, int, str], None]


def _run_partition(sessions: sessionmaker[Session], settings: Settings, dataset_id: int,
                   partition: dt.date, clock: dt.datetime) -> int:
    """Run one partition of a dataset as the scheduler (or `run --date`, for a rerun) would,
    with the clock at `clock`; the number of runs made (1)."""
    with sessions.begin() as session:
        run = Run(dataset_id=dataset_id, trigger="demo", partition_from=partition,
                  partition_to=partition, requested_by="demo")
        session.add(run)
        session.flush()
        run_id = run.id
    execute_run(sessions, settings, run_id, now=clock, notify=False)
    return 1


def land_demo(sessions: sessionmaker[Session], settings: Settings, *, days: int = 120,
              seed: int = 7, end: dt.date | None = None,
              progress: ProgressFn | None = None) -> int:
    """Play the demo's days: each day the upstream delivers its files, then the pipeline
    runs for that day's partition (ingest, profile, monitors, alerts) as the scheduler
    would, with the clock set to after the day's deliveries. Writes the demo's datasets
    into the config and its ground truth next to it. Returns the number of runs."""
    factory = DemoFactory(settings.landing, days=days, seed=seed, end=end or default_end())
    config = load_config(settings.config_path)
    declared = demo_config()
    ours = {d.name for d in declared.datasets}
    config = config.model_copy(update={
        "datasets": [*(d for d in config.datasets if d.name not in ours), *declared.datasets]})
    save_config(config, settings.config_path)
    with sessions.begin() as session:
        synced = sync_datasets(session, declared, settings.home)
        dataset_ids = [d.id for d in synced]
        labels_id = next(d.id for d in synced if d.name == OUTCOMES)
        scores_id = next(d.id for d in synced if d.name == SCORES)
        customers_id = next(d.id for d in synced if d.name == CUSTOMERS)
    write_ground_truth(settings.home, factory.ground_truth())
    runs = 0
    for index in range(days):
        factory.deliver(index)
        partition = factory.day(index)
        clock = partition_day_end(partition) + dt.timedelta(hours=RUN_AFTER_HOURS)
        for dataset_id in dataset_ids:
            # labels are due days after their partition: run for the scored day due now,
            # and for a late batch the day it comes
            if dataset_id == labels_id:
                resolved = [factory.day(d) for d in
                            sorted({*factory.labels_due(index), index - LABEL_DELAY_DAYS})
                            if d >= 0]
            else:
                resolved = [partition]
            for day in resolved:
                runs += _run_partition(sessions, settings, dataset_id, day, clock)
        # a corrected redelivery is rerun through the normal path, the snapshot first: its
        # passing volume resolves the incident, so the held scores' gate releases below
        for fixed in factory.corrections_due(index):
            for dataset_id in (customers_id, scores_id):
                runs += _run_partition(sessions, settings, dataset_id, factory.day(fixed), clock)
        # the day's verified scores are scored and delivered unless their gate holds them
        run_due_stages(sessions, settings, worker_id="demo", dataset_id=scores_id,
                       held=False, inline=_play_stage)
        if progress:
            progress(index + 1, days, partition.isoformat())
    return runs
