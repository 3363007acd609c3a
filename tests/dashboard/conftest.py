"""AppTest from the entry point, signed in as alice, with Streamlit's caches cleared (AppTest
shares them across tests, and each test has its own store)."""
from __future__ import annotations

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.dashboard.apptest import ENTRY, sign_in


@pytest.fixture
def app(settings, monkeypatch) -> AppTest:
    monkeypatch.delenv("MONITORS_DASHBOARD_WORKER", raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ENTRY), default_timeout=60)
    sign_in(at, "alice")
    return at
