"""A store whose data holds markdown (issue 14 #3): a dataset, a column, a category value,
a monitor, an alert message, a quarantine reason, a comment and a run's error each hold
`payload`, an image whose URL a browser would fetch if the dashboard rendered it."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd

from detectors.result import Finding
from monitors.intake.ingest import create_dataset, ingest_file
from monitors.lifecycle.alerts import Signal, comment, record_signals
from monitors.pipeline import queue

FIRST = dt.date(2026, 3, 2)


def image(url: str) -> str:
    return f"![p]({url})"


def _deliver(folder: Path, day: dt.date, header: str, rows: list[str]) -> Path:
    path = folder / f"shop_{day}.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    arrived = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(1), dt.UTC).timestamp()
    os.utime(path, (arrived, arrived))
    return path


def seed(home: Path, sessions, payload: str) -> dict:
    """Land three days (the third quarantined) of a dataset named `payload` with a column
    named `payload` whose values include `payload`, an alert about it, a comment and a failed
    run. Returns the alert's id and the dataset's name."""
    folder = home / "landing" / "shop"
    folder.mkdir(parents=True, exist_ok=True)
    # a name the CSV reader takes as one field: the payload has no comma or quote
    header = f"id,channel,{payload}"
    days = [FIRST + dt.timedelta(days=n) for n in range(3)]
    good = [_deliver(folder, day, header, [f"{i},{('web', payload)[i % 2]},{i * 1.5}"
                                           for i in range(20)]) for day in days[:2]]
    broken = _deliver(folder, days[2], header, [f"{payload},web,1.0"])
    with sessions.begin() as session:
        dataset = create_dataset(session, "shop", good[0])
        # a name `ingest --create` refuses now, as a store made before that rule may hold it
        dataset.name = payload
        for path in good:
            ingest_file(session, dataset, path)
        outcome = ingest_file(session, dataset, broken)
        assert outcome.status == "quarantined", outcome
        finding = Finding(at=pd.Timestamp(days[1]), value=1.0, expected=0.0, lower=None,
                          upper=None, score=None, detail=f"new category {payload}")
        signal = Signal(dataset_id=dataset.id, monitor=payload, detector="new_category",
                        column=payload, severity="critical", partition=days[1], finding=finding,
                        evidence={"category": payload})
        now = dt.datetime.now(dt.UTC)
        [alert_id] = record_signals(session, [signal], now=now, config_version=None).new
        comment(session, alert_id, by="alice", note=payload)
        queue.request_run(session, dataset, days[0], days[1], trigger="manual", by="alice")
    run = queue.claim_next(sessions.kw["bind"], "w1", dt.timedelta(minutes=5))
    with sessions.begin() as session:
        queue.finish(session, run.id, "failed", error=payload)
    return {"alert": alert_id, "dataset": payload}
