"""Two people on call, two browser sessions and the CLI at once (issue 13 #1): what one of
them or the CLI changes is what the other sees on their next page load, on the alerts table
and on the alert's detail page. Before the triage views were keyed by the store's state, a
second tab showed the acknowledged alert as `open` for up to ten minutes."""
from __future__ import annotations

import subprocess
import sys

from monitors.lifecycle import alerts as lifecycle
from tests.browser.conftest import ROOT, shot

TIMEOUT = 30_000


def open_alert(page, url: str, alert_id: int) -> None:
    page.goto(f"{url}/alert?alert={alert_id}")
    page.get_by_text(f"#{alert_id} ·").wait_for(timeout=TIMEOUT)
    page.wait_for_timeout(1000)


def test_an_acknowledgement_from_the_cli_reaches_both_sessions(demo, serve, browser, sessions):
    url = serve()
    with sessions() as session:
        alert_id = lifecycle.list_alerts(session, status="open", limit=1)[0]["id"]
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1400}) for _ in range(2)]
    try:
        ana, bo = (context.new_page() for context in contexts)
        # both look at the alert while it is open: the server caches what they saw
        for page in (ana, bo):
            open_alert(page, url, alert_id)
            assert page.get_by_text("open", exact=True).first.is_visible()
        ana.goto(f"{url}/alerts?status=open,acknowledged")
        ana.get_by_role("heading", name="Alerts").wait_for(timeout=TIMEOUT)

        done = subprocess.run([sys.executable, "-m", "monitors", "alerts", "ack", str(alert_id),
                               "--by", "carol"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr

        # bo reloads the detail page; ana opens it in her session
        for page in (bo, ana):
            open_alert(page, url, alert_id)
            page.get_by_text("acknowledged", exact=True).first.wait_for(timeout=TIMEOUT)
            # on the timeline (a grid drawn on a canvas: its cells are in the page, unseen)
            page.get_by_text("carol", exact=True).first.wait_for(state="attached",
                                                                 timeout=TIMEOUT)
        shot(ana, "two-sessions-ana-detail")
        shot(bo, "two-sessions-bo-detail")
    finally:
        for context in contexts:
            context.close()
