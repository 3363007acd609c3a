"""Finding a dataset by name, the lookup every command starts from. The store answers None
for an unknown name; here it becomes a refusal a person can act on (the known names listed,
so a typo is seen at once). Light on purpose: the alert lifecycle and the CLI import it."""
from __future__ import annotations

from sqlalchemy.orm import Session

from monitors.errors import NotFound
from store import queries
from store.models import Dataset


class UnknownDataset(NotFound):
    """No dataset of that name; the message lists the known ones."""

    def __init__(self, name: str, known: list[str]):
        listing = ", ".join(known) if known else "none yet"
        super().__init__(f"unknown dataset {name!r} (known: {listing})")


def find_dataset(session: Session, name: str) -> Dataset:
    """The dataset called `name`, or UnknownDataset."""
    dataset = queries.get_dataset(session, name)
    if dataset is None:
        raise UnknownDataset(name, [d.name for d in queries.list_datasets(session)])
    return dataset
