"""A small labelled model for the labels and performance tests: a model output `scores`
(CSV: id, score, model_version) and its labels `outcomes` (CSV: id, bought), delivered
`DELAY` days after the scores, with a run per day as the scheduler would make it."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from monitors.catalog import sync_datasets
from monitors.config import load_config
from monitors.intake.freshness import partition_day_end
from monitors.pipeline import queue
from monitors.pipeline.run import execute_run
from store import queries

FIRST = dt.date(2026, 3, 2)
DELAY = 2
ROWS = 300
CONFIG = {
    "datasets": [
        {"name": "scores", "kind": "model_output", "format": "csv", "source": "landing/scores",
         "contract": {"columns": [{"name": "id", "type": "integer", "nullable": False},
                                  {"name": "score", "type": "float", "nullable": False},
                                  {"name": "model_version", "type": "string"}]},
         "automatic": {"volume": False, "levels": False, "drift": False, "categories": False},
         "labels": {"dataset": "outcomes", "key": "id", "label": "bought",
                    "delay_days": DELAY, "reference_days": 7}},
        {"name": "outcomes", "kind": "labels", "format": "csv", "source": "landing/outcomes",
         "deadline_hours": 24 * DELAY + 6,
         "contract": {"columns": [{"name": "id", "type": "integer", "nullable": False},
                                  {"name": "bought", "type": "integer"}]},
         "automatic": {"volume": False, "levels": False}},
    ],
}


def day(index: int) -> dt.date:
    return FIRST + dt.timedelta(days=index)


def predictions(index: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng([seed, index])
    logit = rng.normal(-0.5, 1.3, ROWS)
    return pd.DataFrame({"id": np.arange(ROWS) + 1000 * index,
                         "score": (1 / (1 + np.exp(-logit))).round(6),
                         "model_version": np.where(np.arange(ROWS) % 3 == 0, "v2", "v1")})


def outcomes(frame: pd.DataFrame, index: int, *, concept_change: bool = False,
             seed: int = 0) -> pd.DataFrame:
    """Outcomes drawn from the scores (a calibrated model); under a concept change they are
    drawn from another customer's score: the same rate, the ranking lost."""
    rng = np.random.default_rng([seed, index, 1])
    probability = frame["score"].to_numpy()
    if concept_change:
        probability = rng.permutation(probability)
    return pd.DataFrame({"id": frame["id"], "bought": (rng.random(len(frame)) < probability).astype(int)})


def write(home: Path, dataset: str, partition: dt.date, frame: pd.DataFrame,
          arrived: dt.datetime | None = None) -> Path:
    path = home / "landing" / dataset / f"{dataset}_{partition}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    stamp = (arrived or partition_day_end(partition) + dt.timedelta(hours=1)).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def setup(settings, sessions, config: dict = CONFIG) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.config_path.write_text(yaml.safe_dump(config))
    with sessions.begin() as session:
        sync_datasets(session, load_config(settings.config_path), settings.home)


def run(settings, sessions, dataset: str, partition: dt.date, clock: dt.datetime) -> None:
    with sessions.begin() as session:
        found = queries.get_dataset(session, dataset)
        run_id = queue.request_run(session, found, partition, partition, trigger="manual",
                                   by="test", today=clock.date()).id
    execute_run(sessions, settings, run_id, now=clock, notify=False)


def play(settings, sessions, days: int, *, concept_change: int | None = None,
         scored=None, resolve=None) -> None:
    """`days` days of scores, each day's outcomes landing DELAY days later, with the day's
    runs after its deliveries. `scored(index)` and `resolve(frame, index)` replace the
    day's predictions and outcomes when they return a frame."""
    setup(settings, sessions)
    frames = {}
    for index in range(days):
        frames[index] = (scored and scored(index)) if scored else None
        if frames[index] is None:
            frames[index] = predictions(index)
        clock = partition_day_end(day(index)) + dt.timedelta(hours=18)
        write(settings.home, "scores", day(index), frames[index])
        run(settings, sessions, "scores", day(index), clock)
        resolved = index - DELAY
        if resolved >= 0:
            truth = resolve(frames[resolved], resolved) if resolve else None
            if truth is None:
                truth = outcomes(frames[resolved], resolved, concept_change=resolved == concept_change)
            write(settings.home, "outcomes", day(resolved), truth,
                  arrived=clock - dt.timedelta(hours=14))
            run(settings, sessions, "outcomes", day(resolved), clock)
