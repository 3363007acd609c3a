"""A small lineage in the store for the gate and incident tests: customers -> sales ->
report, and an unrelated dataset, with a batch on the first days."""
from __future__ import annotations

import datetime as dt

from store.models import Batch, BatchStatus, Dataset
from tests.monitors.signals import NOW, day

UPSTREAM = {"customers": [], "sales": ["customers"], "report": ["sales"], "weather": []}


def add_lineage(sessions, days: int = 3) -> dict[str, int]:
    """The four datasets with their upstreams and a batch on day(0) .. day(days - 1)."""
    with sessions.begin() as session:
        ids = {}
        for name, upstream in UPSTREAM.items():
            dataset = Dataset(name=name, format="csv", upstream=upstream)
            session.add(dataset)
            session.flush()
            ids[name] = dataset.id
            for n in range(days):
                add_batch(session, dataset.id, day(n))
        return ids


def add_batch(session, dataset_id: int, partition: dt.date) -> None:
    session.add(Batch(dataset_id=dataset_id, partition=partition, status=BatchStatus.ingested,
                      rows=100, columns=3, source="test", fingerprint=f"{dataset_id}-{partition}",
                      arrived_at=NOW))
