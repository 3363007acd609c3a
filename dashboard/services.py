"""The dashboard's one door to the system: queries return DataFrames, commands go through
monitors. Pages never touch the store directly."""
from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from monitors.settings import load_settings
from store import queries
from store.engine import open_store


@st.cache_resource
def session_factory() -> sessionmaker[Session]:
    _, sessions = open_store(load_settings().db_url)
    return sessions


@st.cache_data(ttl=10)
def datasets_frame() -> pd.DataFrame:
    with session_factory()() as session:
        rows = []
        for d in queries.list_datasets(session):
            partitions = queries.list_partitions(session, d.id)
            rows.append({"dataset": d.name, "kind": d.kind, "format": d.format,
                         "batches": len(partitions),
                         "first partition": partitions[0] if partitions else None,
                         "last partition": partitions[-1] if partitions else None})
    return pd.DataFrame(rows, columns=["dataset", "kind", "format", "batches",
                                       "first partition", "last partition"])


@st.cache_data(ttl=10)
def batches_frame(dataset: str | None = None) -> pd.DataFrame:
    with session_factory()() as session:
        dataset_id = None
        if dataset:
            found = queries.get_dataset(session, dataset)
            dataset_id = found.id if found else -1
        rows = [{"dataset": name, "partition": b.partition, "status": b.status, "rows": b.rows,
                 "arrived at": b.arrived_at, "reason": b.reason}
                for b, name in queries.list_batches(session, dataset_id)]
    frame = pd.DataFrame(rows, columns=["dataset", "partition", "status", "rows", "arrived at", "reason"])
    return frame.sort_values(["partition", "dataset"], ascending=[False, True], kind="stable")
