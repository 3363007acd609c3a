"""Data is shown as text (issue 14 #3): a dataset, column, category, monitor, message,
reason, comment or error holding markdown reaches no page as markdown. Before, the alert
page's heading and message, the datasets page's quarantine caption, the monitors page's
caption and toggle button and the pipeline's run error were rendered, so an image in the
data made every viewer's browser fetch its URL. The browser twin is
tests/browser/test_markdown_as_text.py."""
from __future__ import annotations

import json

import pytest

from dashboard import metric_charts
from dashboard.text import chart_text, md
from tests.dashboard.apptest import open_page
from tests.dashboard.markdown_payload import image, seed

PAYLOAD = image("http://127.0.0.1:9/x.png")
SHOWN = md(PAYLOAD)  # how a markdown element holds it when it shows it as text


def texts(at) -> list[str]:
    """Every string of the page that Streamlit renders as markdown: bodies, labels, tooltips,
    progress texts, in the main area and the sidebar."""
    found = []

    def walk(node) -> None:
        for child in getattr(node, "children", {}).values():
            walk(child)
        proto = getattr(node, "proto", None)
        if proto is None:
            return
        for field in ("body", "label", "help", "text", "placeholder"):
            try:
                value = getattr(proto, field)
            except AttributeError:
                continue
            if isinstance(value, str) and value:
                found.append(value)

    walk(at._tree)
    return found


@pytest.fixture
def hostile(settings, sessions):
    return seed(settings.home, sessions, PAYLOAD)


@pytest.mark.parametrize("page, params", [
    ("alert", "alert"), ("alerts", None), ("datasets", "dataset"), ("monitors", None),
    ("pipeline", None), ("overview", None)])
def test_no_page_renders_data_as_markdown(app, hostile, page, params):
    query = {"alert": str(hostile["alert"])} if params == "alert" else (
        {"dataset": hostile["dataset"]} if params == "dataset" else {})
    at = open_page(app, page, **query)
    if page == "pipeline":
        at.radio(key="pipeline.history_scope").set_value("every dataset").run()
    rendered = texts(at)
    raw = [t for t in rendered if "](" in t.replace(r"\]\(", "")]
    assert not raw, raw
    if page in ("alert", "datasets", "monitors", "pipeline"):
        # the data is still there to read, as text
        assert any(SHOWN in t for t in rendered), rendered


def test_the_alert_page_shows_the_message_and_names_as_text(app, hostile):
    at = open_page(app, "alert", alert=str(hostile["alert"]))
    assert SHOWN in at.subheader[0].value
    assert any(m.value == f"> {md('new category ' + PAYLOAD)}" for m in at.markdown)


def test_chart_titles_legends_and_hovers_hold_data_as_text():
    import pandas as pd

    link = "<a href='http://127.0.0.1:9/'>x</a>"
    shares = pd.DataFrame({"partition": pd.to_datetime(["2026-03-02", "2026-03-02"]),
                           "key": [link, "web"], "share": [0.5, 0.5]})
    spec = json.loads(metric_charts.class_mix_figure(shares, title=f"{link}: shares").to_json())
    assert spec["layout"]["title"]["text"] == chart_text(f"{link}: shares")
    names = {trace["name"] for trace in spec["data"]}
    assert chart_text(link) in names and link not in names
    assert all(link not in trace["hovertemplate"] for trace in spec["data"])
