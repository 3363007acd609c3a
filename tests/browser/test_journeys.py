"""Journeys through the real dashboard in headless Chromium."""
from __future__ import annotations

from monitors.intake.ingest import create_dataset, ingest_file
from tests.browser.conftest import shot


def test_the_datasets_page_shows_batches_and_quarantine_reasons(serve, page, sessions, tmp_path):
    good = tmp_path / "orders_2026-01-05.csv"
    good.write_text("id,amount\n1,2.5\n2,3.0\n")
    bad = tmp_path / "orders_2026-01-06.csv"
    bad.write_text("id,amount\n1,lots\n")
    with sessions.begin() as session:
        dataset = create_dataset(session, "orders", good)
        ingest_file(session, dataset, good)
        ingest_file(session, dataset, bad)

    page.goto(serve() + "/datasets")
    page.get_by_role("heading", name="Datasets").wait_for(timeout=30_000)
    page.get_by_text("Quarantined (1)").wait_for(timeout=30_000)
    page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # the grid paints its cells after the canvas appears
    shot(page, "datasets")
    assert page.get_by_text("Batches (2)").is_visible()
