"""Data reaches the viewer's browser as text (issue 14 #3), in Chromium: a store whose
dataset, column, category, monitor, message, reason, comment and run error hold an image
pointing at a local HTTP server. Visiting the pages must not make the browser ask for it;
before, the alert, datasets, monitors and pipeline pages each fetched it."""
from __future__ import annotations

import http.server
import threading

import pytest

from tests.browser.test_pages import settle
from tests.dashboard.markdown_payload import image, seed


@pytest.fixture
def listener():
    """A local HTTP server that records the paths asked of it."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            asked.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()


PAGES = [("alert?alert={alert}", "Alert"), ("alerts", "Alerts"), ("datasets", "Datasets"),
         ("monitors", "Monitors"), ("pipeline", "Pipeline"), ("overview", "Overview")]


def test_no_page_makes_the_browser_fetch_what_the_data_points_at(settings, sessions, serve, page,
                                                                listener):
    base, asked = listener
    hostile = seed(settings.home, sessions, image(f"{base}/x.png"))
    url = serve()
    for path, heading in PAGES:
        page.goto(f"{url}/{path.format(alert=hostile['alert'])}")
        page.get_by_role("heading", name=heading, exact=True).wait_for(timeout=30_000)
        settle(page, "[data-testid='stDataFrame']")
        if path == "pipeline":
            page.get_by_text("every dataset").click()
            page.wait_for_timeout(1500)
        assert asked == [], f"{path}: the browser fetched {asked}"
    # the data is on the page, as the text it is
    page.goto(f"{url}/alert?alert={hostile['alert']}")
    page.get_by_text(f"new category {image(base + '/x.png')}").wait_for(timeout=30_000)
    assert asked == []
