"""The override journey in a real browser: on the Pipeline page, a held scoring stage of
the demo; an override without a reason is refused and changes nothing; with one, the
held stages are let past, signed by the person, and the page says so."""
from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import func, select

from store.models import StageAction, StageRun
from tests.browser.conftest import shot
from tests.browser.test_pages import GRID, settle, sign_in

TIMEOUT = 30_000


def held_stages(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count(StageRun.id)).where(StageRun.state == "held"))


def overrides(sessions) -> list[tuple[str, str]]:
    with sessions() as session:
        return [(a.by, a.reason) for a in session.scalars(
            select(StageAction).where(StageAction.action == "override"))]


def test_an_operator_overrides_a_held_gate_with_a_reason(demo, serve, page, sessions):
    held_before = held_stages(sessions)
    assert held_before >= 2 and overrides(sessions) == []
    page.set_viewport_size({"width": 1400, "height": 2600})
    page.goto(f"{serve()}/pipeline")
    page.get_by_role("heading", name="Pipeline").wait_for(timeout=TIMEOUT)
    sign_in(page)
    page.locator("[data-testid='stSelectbox']").filter(has_text="Dataset").first.click()
    page.get_by_role("option", name="model_scores", exact=True).click()
    # the stage picked first is a held one (failed and held come first)
    held = page.get_by_role("link", name=re.compile(r"Held by alert #\d+"))
    held.wait_for(timeout=TIMEOUT)
    override = page.get_by_role("button", name="Override the gate")

    override.click()  # no reason
    page.get_by_text("Not changed: an override needs a reason").wait_for(timeout=TIMEOUT)
    assert held_stages(sessions) == held_before and overrides(sessions) == []

    reason = page.get_by_role("textbox", name=re.compile("^Reason"))
    reason.fill("vendor confirmed the smaller delivery is real")
    reason.press("Enter")
    page.wait_for_timeout(800)
    override.click()
    page.get_by_text("gate overridden by alice").wait_for(timeout=TIMEOUT)
    assert overrides(sessions) == [("alice", "vendor confirmed the smaller delivery is real")]
    assert held_stages(sessions) < held_before
    # the stage acted on stays picked, its note saying who let it past and why
    page.get_by_text(re.compile(r"overridden by alice: vendor confirmed the smaller delivery "
                                r"is real \(past #\d+")).wait_for(timeout=TIMEOUT)
    expect(reason).to_have_value("", timeout=TIMEOUT)  # not offered again for the next stage
    settle(page, GRID)
    shot(page, "pipeline-stage-overridden")


def open_scores(page, url: str, name: str) -> None:
    page.set_viewport_size({"width": 1400, "height": 2600})
    page.goto(f"{url}/pipeline")
    page.get_by_role("heading", name="Pipeline").wait_for(timeout=TIMEOUT)
    sign_in(page, name)
    page.locator("[data-testid='stSelectbox']").filter(has_text="Dataset").first.click()
    page.get_by_role("option", name="model_scores", exact=True).click()
    page.get_by_role("link", name=re.compile(r"Held by alert #\d+")).wait_for(timeout=TIMEOUT)


def test_two_tabs_see_an_override_made_from_the_cli(demo, serve, browser, page, sessions):
    """Two people on the Pipeline page; a third overrides from the command line. The next
    thing either tab does shows the stages let past, signed by who did it."""
    from monitors.cli import main

    url = serve()
    other = browser.new_context().new_page()
    open_scores(page, url, "alice")
    open_scores(other, url, "bo")
    with sessions() as session:
        held = session.scalars(select(StageRun.partition).where(StageRun.state == "held")
                               .order_by(StageRun.partition)).first()
    assert main(["stages", "override", "--dataset", "model_scores", "--date", held.isoformat(),
                 "--by", "carol", "--reason", "rescored by hand"]) == 0
    for tab in (page, other):
        tab.locator("[data-testid='stMultiSelect']").filter(has_text="States").first.click()
        tab.get_by_role("option", name="overridden", exact=True).click()
        tab.keyboard.press("Escape")
        tab.get_by_text(re.compile(r"^2 stage run\(s\) match")).wait_for(timeout=TIMEOUT)
        # the picked stage, now the overridden one, says who let it past and why
        tab.locator("[data-testid='stMarkdownContainer']").filter(
            has_text=re.compile(r"overridden by carol: rescored by hand \(past #")
        ).first.wait_for(timeout=TIMEOUT)
        settle(tab, GRID)
    shot(page, "pipeline-cli-override-alice")
    shot(other, "pipeline-cli-override-bo")
    other.context.close()
