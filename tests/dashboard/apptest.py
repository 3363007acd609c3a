"""Driving the dashboard in AppTest: sign in, open a page (with query parameters)."""
from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "streamlit_app.py"


def sign_in(at: AppTest, name: str) -> None:
    """What typing one's name in the sidebar leaves behind (dashboard.identity's keys)."""
    at.session_state["identity.who"] = name
    at.session_state["identity.input"] = name


def open_page(at: AppTest, page: str, **params) -> AppTest:
    """Run the entry point, then switch to `page` ("alerts" or "dashboard/views/alerts.py")."""
    at.run()
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page if "/" in page else f"dashboard/views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def plain(text: str) -> str:
    """What a person reads of markdown the dashboard escaped (dashboard.text.md): every
    data value reaches the page with its punctuation backslash-escaped."""
    return re.sub(r"\\(.)", r"\1", text)
