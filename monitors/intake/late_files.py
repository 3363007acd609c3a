"""Late files for missing partitions: a file that lands after its partition was marked
missing is noticed by the worker's poll, which queues the partition's run; the run lands
the file and the missing alert resolves (its monitor passes)."""
from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from monitors.catalog import delivered_files
from monitors.intake.file_roots import OutsideRoots
from monitors.pipeline.queue import RunTrigger, request_run
from store import queries
from store.models import UNRESOLVED, Alert, Dataset, Run

log = logging.getLogger(__name__)
MISSING_MONITOR = "freshness:missing"


def request_late_deliveries(session: Session, settings) -> list[Run]:
    """Runs for the partitions marked missing (an unresolved missing alert) whose file has
    landed since: the run lands it and resolves the alert. A partition is asked for once
    per delivery: not while a run requested after the file's arrival exists. SQL sources
    are not listed here: their partitions are read when their schedule runs."""
    requested: list[Run] = []
    missing = session.execute(
        select(Alert.partition, Dataset).join(Dataset, Dataset.id == Alert.dataset_id)
        .where(Alert.monitor == MISSING_MONITOR, Alert.partition.is_not(None),
               Alert.status.in_([s.value for s in UNRESOLVED]), Dataset.format != "sql",
               Dataset.paused.is_(False))).all()
    for partition, dataset in missing:
        if queries.get_latest_batch(session, dataset.id, partition) is not None:
            continue  # something landed: the next run of the partition judges it
        try:
            files = delivered_files(settings, dataset, partition)
        except OutsideRoots as exc:
            log.warning("dataset %s: late files not looked for: %s", dataset.name, exc)
            continue
        if not files:
            continue
        landed = max(dt.datetime.fromtimestamp(p.stat().st_mtime, dt.UTC) for p in files)
        asked = session.scalar(select(func.count(Run.id)).where(
            Run.dataset_id == dataset.id, Run.partition_from <= partition,
            Run.partition_to >= partition, Run.requested_at >= landed))
        if asked:
            continue
        log.info("dataset %s: a file landed for missing partition %s; run requested",
                 dataset.name, partition)
        requested.append(request_run(session, dataset, partition, partition,
                                     trigger=RunTrigger.manual, by="late delivery"))
    return requested
