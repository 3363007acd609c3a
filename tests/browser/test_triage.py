"""The on-call journey in a real browser: overview -> alerts -> one alert -> acknowledge,
mute a similar one, rerun its partition and watch the rerun finish."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

from sqlalchemy import select

from monitors.demo import land_demo
from monitors.lifecycle import alerts as lifecycle
from store.models import AlertEvent, MuteRule
from tests.browser.conftest import ROOT, shot

TIMEOUT = 30_000


def wait_for_grid(page) -> None:
    page.locator("[data-testid='stDataFrame'] canvas").first.wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(1500)  # the grid paints its cells after the canvas appears


def test_triage_from_the_overview_to_a_finished_rerun(serve, page, sessions, settings):
    land_demo(sessions, settings, days=40, seed=1)  # ends yesterday: today's batches are real

    # tall enough for a whole page in each screenshot: Streamlit scrolls inside its own
    # container, so a full-page shot of a short viewport would cut the page off
    page.set_viewport_size({"width": 1400, "height": 2200})
    page.goto(serve())
    page.get_by_role("heading", name="Overview").wait_for(timeout=TIMEOUT)
    page.get_by_text("Health per dataset").wait_for(timeout=TIMEOUT)
    page.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT)
    wait_for_grid(page)
    page.get_by_label("Your name", exact=True).fill("alice")
    page.get_by_label("Your name", exact=True).press("Enter")
    page.wait_for_timeout(500)
    shot(page, "triage-1-overview")

    # the health row's link opens the alerts page filtered to that dataset
    page.get_by_role("link", name="customer_snapshot:").click()
    page.get_by_role("heading", name="Alerts").wait_for(timeout=TIMEOUT)
    wait_for_grid(page)
    shot(page, "triage-2-alerts")
    assert "dataset=customer_snapshot" in page.url

    # pick the first row (the grid draws on a canvas: click its row marker) and follow the
    # link to its detail page, in the same browser session
    grid = page.locator("[data-testid='stDataFrame'] canvas").first.bounding_box()
    page.mouse.click(grid["x"] + 18, grid["y"] + 35 + 17)
    link = page.get_by_role("link", name="Open alert #")
    link.wait_for(timeout=TIMEOUT)
    shot(page, "triage-3-alerts-selected")
    alert_id = int(link.inner_text().split("#")[1].split()[0])
    link.click()
    page.get_by_text(f"#{alert_id} · customer_snapshot").wait_for(timeout=TIMEOUT)
    page.locator(".js-plotly-plot").first.wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(1000)
    shot(page, "triage-4-alert")

    # the name typed on the overview signs the acknowledgement
    page.get_by_role("button", name="Acknowledge").click()
    page.get_by_text("Acknowledged by alice.").wait_for(timeout=TIMEOUT)
    with sessions() as session:
        last = session.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert_id)
                               .order_by(AlertEvent.id.desc())).first()
        document = lifecycle.get_alert(session, alert_id)
    assert (last.kind, last.by) == ("acknowledged", "alice")

    # mute the alerts like this one: the dialog proposes this monitor on this dataset
    page.get_by_role("button", name="Mute similar…").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=TIMEOUT)
    dialog.get_by_label("Reason").fill("a bundling campaign; marketing confirmed")
    dialog.get_by_label("Reason").press("Enter")
    end = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    # the date field is a row of year, month and day segments that advance as one types
    dialog.get_by_role("spinbutton", name="year, Ends on (UTC)").click()
    page.keyboard.type(end.replace("-", ""))
    page.keyboard.press("Tab")
    # the calendar the date field opened stays over the dialog until one clicks elsewhere
    dialog.get_by_label("Reason").click()
    page.wait_for_timeout(1000)
    shot(page, "triage-5-mute-dialog")
    dialog.get_by_role("button", name="Mute", exact=True).click()
    page.get_by_text("Mute 1 stored").wait_for(timeout=TIMEOUT)
    with sessions() as session:
        stored = session.scalars(select(MuteRule)).one()
    assert stored.matchers == {k: document[k] for k in ("dataset", "column", "monitor") if document[k]}
    assert stored.created_by == "alice"

    # rerun its partition and watch the rerun finish (a worker drains the queue meanwhile)
    page.get_by_role("button", name="Rerun partition").click()
    page.get_by_text("queued").first.wait_for(timeout=TIMEOUT)
    shot(page, "triage-6-rerun-queued")
    subprocess.run([sys.executable, "-m", "monitors", "worker", "--once", "--no-schedules"],
                   cwd=ROOT, env={**os.environ, "MONITORS_HOME": str(settings.home)},
                   check=True, capture_output=True, timeout=120)
    page.get_by_text("succeeded").first.wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(500)
    shot(page, "triage-7-rerun-done")

    # an anomaly's page: the expected band, the point outside it, and the decomposition
    with sessions() as session:
        anomaly = lifecycle.list_alerts(session, dataset="customer_snapshot",
                                        monitor="volume:anomalies")[0]["id"]
    page.goto(page.url.split("/alert")[0] + f"/alert?alert={anomaly}")
    page.get_by_text(f"#{anomaly} · customer_snapshot · volume:anomalies").wait_for(timeout=TIMEOUT)
    page.get_by_text("Show the seasonal decomposition").click()
    page.get_by_text("remainder").wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(1000)
    shot(page, "triage-8-anomaly-decomposition")
