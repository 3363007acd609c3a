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
