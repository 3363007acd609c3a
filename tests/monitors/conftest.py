"""Fixtures of the pipeline tests."""
from __future__ import annotations

import pytest

from tests.monitors.signals import add_dataset


@pytest.fixture
def sales(sessions) -> int:
    with sessions.begin() as session:
        add_dataset(session, "customers")
        return add_dataset(session, "sales")
