"""The datasets the store knows: mirrored from the config file, or made from a first batch."""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy.orm import Session

from monitors.config import DatasetConfig, MonitorsConfig
from monitors.datasets import (  # named here too, for callers
    UnknownDataset,
    find_dataset,
)
from monitors.intake.file_roots import OutsideRoots, inside_roots
from monitors.intake.ingest import partition_from_name
from monitors.intake.readers import detect_format
from monitors.settings import Settings
from store import queries
from store.models import Dataset

__all__ = ["UnknownDataset", "deliveries", "delivered_files", "find_dataset", "source_folder", "sync_datasets"]

log = logging.getLogger(__name__)


def source_folder(home: Path, source: str) -> Path:
    """A file dataset's landing folder; relative sources live under MONITORS_HOME."""
    path = Path(source)
    return path if path.is_absolute() else home / path


def delivered_files(settings: Settings, dataset: Dataset, partition: dt.date) -> list[Path]:
    """The files delivered to a file dataset's landing folder for `partition` (named with
    its date), oldest first, each resolved: what is read is what was checked. A file that
    leads outside the file roots (a symlink) is skipped with a warning; a folder that does
    raises OutsideRoots, which fails the run with the reason."""
    return deliveries(settings, dataset, {partition}).get(partition, [])


def deliveries(settings: Settings, dataset: Dataset,
               partitions: set[dt.date]) -> dict[dt.date, list[Path]]:
    """`delivered_files` for several partitions from one listing of the folder: a year's
    backfill listed a landing folder of a year of files once per partition."""
    folder = inside_roots(source_folder(settings.home, dataset.source), settings.file_roots)
    if not folder.is_dir():
        return {}
    found: dict[dt.date, list[Path]] = {}
    for path in folder.iterdir():
        partition = partition_from_name(path)
        if partition not in partitions or not (path.is_file() and detect_format(path)):
            continue
        try:
            found.setdefault(partition, []).append(inside_roots(path, settings.file_roots))
        except OutsideRoots as exc:
            log.warning("dataset %s, partition %s: skipped, not read: %s", dataset.name, partition, exc)
    # oldest delivery first, so the latest one ends up in force
    return {partition: sorted(files, key=lambda p: (p.stat().st_mtime, p.name))
            for partition, files in found.items()}


def sync_datasets(session: Session, config: MonitorsConfig, home: Path) -> list[Dataset]:
    """Make the store's datasets match the config's declarations (adding, never dropping:
    a dataset removed from the file keeps its history)."""
    synced = []
    for declared in config.datasets:
        dataset = queries.get_dataset(session, declared.name) or Dataset(name=declared.name)
        _apply(dataset, declared, home)
        session.add(dataset)
        synced.append(dataset)
    session.flush()
    return synced


def _apply(dataset: Dataset, declared: DatasetConfig, home: Path) -> None:
    dataset.kind = declared.kind
    dataset.format = declared.format
    dataset.source = (declared.source if declared.format == "sql"
                      else str(source_folder(home, declared.source)))
    dataset.table_name = declared.table
    dataset.partition_key = declared.partition_key
    dataset.schedule = declared.schedule
    dataset.deadline_hours = declared.deadline_hours
    dataset.upstream = list(declared.upstream)
    if declared.contract is not None:
        dataset.contract = declared.contract.to_json()
    dataset.labels = declared.labels.model_dump(mode="json") if declared.labels else None
    dataset.gate_holds_on = declared.gate.holds_on


def infer_missing_contract(settings: Settings, dataset: Dataset,
                           partitions: list[dt.date]) -> bool:
    """A dataset declared without a contract gets the one its first batch implies, as
    `ingest --create` does: the first file delivered for any of `partitions`, then frozen.
    True when a contract was inferred; False when it has one, or nothing was delivered yet
    (its runs then judge only deliveries). SQL sources: the table's columns, reflected."""
    if dataset.contract:
        return False
    if dataset.format == "sql":
        from monitors.intake.pushdown import (
            infer_table_contract,  # SQLAlchemy reflection, only here
        )

        contract = infer_table_contract(dataset)
    else:
        from monitors.contract import infer_contract
        from monitors.intake.readers import read_schema

        first = next((path for partition in partitions
                      for path in delivered_files(settings, dataset, partition)), None)
        if first is None:
            return False
        contract = infer_contract(read_schema(first, detect_format(first) or dataset.format,
                                              settings.limits))
    dataset.contract = contract.to_json()
    log.info("dataset %s: contract inferred from its first batch: %s", dataset.name,
             ", ".join(f"{c.name} {c.type}" for c in contract.columns))
    return True
