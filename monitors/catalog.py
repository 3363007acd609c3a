"""The datasets the store knows: mirrored from the config file, or made from a first batch."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from monitors.config import DatasetConfig, MonitorsConfig
from store import queries
from store.models import Dataset


class UnknownDataset(LookupError):
    def __init__(self, name: str, known: list[str]):
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"unknown dataset {name!r} (known: {listing})")


def find_dataset(session: Session, name: str) -> Dataset:
    dataset = queries.get_dataset(session, name)
    if dataset is None:
        raise UnknownDataset(name, [d.name for d in queries.list_datasets(session)])
    return dataset


def source_folder(home: Path, source: str) -> Path:
    """A file dataset's landing folder; relative sources live under MONITORS_HOME."""
    path = Path(source)
    return path if path.is_absolute() else home / path


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
    if declared.contract is not None:
        dataset.contract = declared.contract.to_json()
