"""The datasets, model outputs, monitors and pipeline pages in headless Chromium on the
demo's store, each saved as a screenshot (test-artifacts/) for a person to look at."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot

GRID = "[data-testid='stDataFrame'] canvas"
CHART = ".js-plotly-plot"


def settle(page, *selectors: str) -> None:
    for selector in selectors:
        page.locator(f"{selector} >> visible=true").first.wait_for(timeout=30_000)
    # grids paint their cells and plotly lays out a moment after the elements appear
    page.wait_for_timeout(1500)


def sign_in(page, name: str = "alice") -> None:
    box = page.get_by_role("textbox", name="Your name")
    box.fill(name)
    box.press("Enter")
    page.wait_for_timeout(800)


@pytest.fixture
def url(demo, serve, page):
    # Streamlit scrolls inside its own container, so a full-page shot is one viewport tall
    page.set_viewport_size({"width": 1400, "height": 2400})
    return serve()


def test_datasets_page(url, page):
    page.goto(f"{url}/datasets")
    page.get_by_role("heading", name="Datasets").wait_for(timeout=30_000)
    settle(page, GRID)
    assert page.get_by_text("Quarantined (1)").is_visible()
    # served as `monitors serve` serves it: no Deploy button for a dashboard already deployed
    assert page.get_by_role("button", name="Deploy").count() == 0
    shot(page, "datasets-batches")
    page.get_by_role("tab", name="Metrics over time").click()
    settle(page, CHART)
    shot(page, "datasets-metrics")
    page.get_by_role("tab", name="Schema history").click()
    settle(page, GRID)
    assert page.get_by_text("delivery(ies) quarantined").is_visible()
    shot(page, "datasets-schema")
    page.get_by_role("tab", name="Freshness").click()
    settle(page, CHART)
    assert page.get_by_text("Late and missing partitions").is_visible()
    shot(page, "datasets-freshness")


def test_model_outputs_page(url, page):
    page.goto(f"{url}/model-outputs")
    page.get_by_role("heading", name="Model outputs").wait_for(timeout=30_000)
    settle(page, CHART)
    page.locator(CHART).nth(3).wait_for(timeout=30_000)
    assert page.get_by_text("partitions over the limit").first.is_visible()
    shot(page, "model-outputs")


def test_monitors_page_previews_a_backtest(url, page):
    page.goto(f"{url}/monitors")
    page.get_by_role("heading", name="Monitors").wait_for(timeout=30_000)
    settle(page, GRID)
    sign_in(page)
    page.get_by_role("button", name="Preview backtest").click()
    page.get_by_text("Nothing was recorded").wait_for(timeout=60_000)
    settle(page, CHART)
    shot(page, "monitors-backtest")


def test_pipeline_page_queues_a_backfill(url, page):
    page.goto(f"{url}/pipeline")
    page.get_by_role("heading", name="Pipeline").wait_for(timeout=30_000)
    settle(page, GRID)
    sign_in(page)
    page.get_by_role("button", name="Backfill").click()
    page.get_by_text("Backfill queued as run").wait_for(timeout=30_000)
    page.get_by_text("In flight (1)").wait_for(timeout=30_000)
    settle(page, GRID)
    shot(page, "pipeline")


def test_the_monitor_editor_edits_the_monitor_picked(url, page):
    """Issue 13 #2, as a person meets it: in the browser the form kept showing (and
    previewing) the first monitor whichever one was picked."""
    page.goto(f"{url}/monitors")
    page.get_by_role("heading", name="Monitors").wait_for(timeout=30_000)
    settle(page, GRID)
    sign_in(page)
    name = page.get_by_role("textbox", name="Name", exact=True)
    assert name.input_value() == "volume:anomalies"
    page.locator("[data-testid='stSelectbox']").filter(has_text="Monitor").first.click()
    # the list is long (every column is watched) and drawn a screenful at a time: type to
    # narrow it, as a person would
    page.keyboard.type("nulls:inc")
    page.get_by_role("option", name="nulls:income", exact=True).click()
    # the rerun after the pick fills the form; the Monitor box shows the name at once
    expect(name).to_have_value("nulls:income", timeout=30_000)
    page.get_by_role("button", name="Preview backtest").click()
    page.get_by_text("Backtest of nulls:income").wait_for(timeout=60_000)
    settle(page, CHART)
    shot(page, "monitors-editor-picked")


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # pictures: one store is enough
@pytest.mark.parametrize("monitor", ["volume:anomalies", "nulls:income", "level:score",
                                     "drift:score", "categories:channel", "freshness:late",
                                     "freshness:missing", "contract"])
def test_each_alert_kind_has_a_detail_page_that_fits_it(url, page, sessions, monitor):
    """A screenshot of each kind of alert's detail page, for a person to look at."""
    from monitors.lifecycle import alerts as lifecycle
    with sessions() as session:
        alert_id = next(a["id"] for a in lifecycle.list_alerts(session) if a["monitor"] == monitor)
    page.goto(f"{url}/alert?alert={alert_id}")
    page.get_by_text(f"#{alert_id} ·").wait_for(timeout=30_000)
    if monitor == "contract":
        page.get_by_text("broke the dataset's contract").wait_for(timeout=30_000)
    else:
        settle(page, CHART)
    shot(page, f"alert-{monitor.replace(':', '-')}")


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)  # a picture: one store is enough
def test_pipeline_page_shows_a_held_stage_and_opens_the_alert_holding_it(url, page):
    import re

    page.goto(f"{url}/pipeline")
    page.get_by_role("heading", name="Pipeline").wait_for(timeout=30_000)
    page.locator("[data-testid='stSelectbox']").filter(has_text="Dataset").first.click()
    page.get_by_role("option", name="model_scores", exact=True).click()
    page.get_by_role("heading", name="Stages").wait_for(timeout=30_000)
    held = page.get_by_role("link", name=re.compile(r"Held by alert #\d+"))
    held.wait_for(timeout=30_000)
    alert_id = re.search(r"#(\d+)", held.inner_text())[1]
    settle(page, GRID)
    shot(page, "pipeline-stages")
    held.click()
    page.get_by_role("heading", name=re.compile(rf"#{alert_id} ·")).wait_for(timeout=30_000)
    shot(page, "pipeline-stages-held-by")
