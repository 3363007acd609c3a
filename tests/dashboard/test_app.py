"""The dashboard as a person meets it, through Streamlit's AppTest from the entry point."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from monitors.intake.ingest import create_dataset, ingest_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(settings):
    st.cache_resource.clear()
    st.cache_data.clear()
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def test_an_empty_store_says_how_to_begin(app):
    app.run()
    app.switch_page("dashboard/views/datasets.py").run()
    assert not app.exception
    assert "python -m monitors demo" in app.info[0].value


def test_datasets_and_batches_are_listed_with_quarantine_reasons(app, sessions, tmp_path):
    good = tmp_path / "orders_2026-01-05.csv"
    good.write_text("id,amount\n1,2.5\n2,3.0\n")
    bad = tmp_path / "orders_2026-01-06.csv"
    bad.write_text("id,amount\n1,lots\n")
    with sessions.begin() as session:
        dataset = create_dataset(session, "orders", good)
        ingest_file(session, dataset, good)
        ingest_file(session, dataset, bad)

    app.run()
    app.switch_page("dashboard/views/datasets.py").run()

    assert not app.exception
    # in page order: datasets, the quarantined batches, every batch (newest first)
    datasets, quarantined, batches = (df.value for df in app.dataframe[:3])
    assert datasets["dataset"].tolist() == ["orders"]
    assert "column 'amount'" in quarantined["reason"].iloc[0]
    assert batches["status"].tolist() == ["quarantined", "ingested"]
