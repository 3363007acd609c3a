"""Write locks for read-check-write transactions, the same on SQLite and PostgreSQL.

A transaction that decides a change from what it read (an alert's status, a mute's end)
must hold the rows it read until it commits, or a writer in between is silently undone.
PostgreSQL does that per row: read them `with_for_update()`. SQLite ignores FOR UPDATE,
and its Python driver runs a transaction's reads outside any database transaction until
the first write, so the only lock there is the database's one writer lock, taken up front
with BEGIN IMMEDIATE (PLATFORM.md); it waits for the current writer up to the store's busy
timeout. Call `lock_for_write` first, then read with `with_for_update()`.

Landing a batch decides from rows that may not exist yet (the first delivery of a
partition has no batch to lock), so it locks the dataset's row instead: `lock_dataset`.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Dataset


def lock_for_write(session: Session) -> None:
    """On SQLite, make this transaction the database's writer now, before it reads."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    # a transaction the driver already began has written, so it holds the lock already
    if not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def lock_dataset(session: Session, dataset_id: int) -> None:
    """Make this transaction the one writer of `dataset_id`'s batches until it commits.

    FOR NO KEY UPDATE (not FOR UPDATE): it excludes other landers of the dataset but not
    the transactions that insert rows referring to it (alerts, metrics), which take only a
    key-share lock on it, so a run writing alerts does not wait for a landing."""
    lock_for_write(session)
    session.execute(select(Dataset.id).where(Dataset.id == dataset_id)
                    .with_for_update(key_share=True))
