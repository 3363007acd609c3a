"""Where the labelled reference data lives: beside the repository (../shared/data)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_data(*parts: str) -> Path:
    """A file of the labelled reference data kept beside the repository (../shared/data),
    or where MONITORS_SHARED_DATA points. Missing: skipped here, a failure in CI."""
    roots = [os.environ.get("MONITORS_SHARED_DATA"),
             Path(__file__).resolve().parents[2] / "shared" / "data", "/work/shared/data"]
    for root in filter(None, roots):
        path = Path(root).joinpath(*parts)
        if path.exists():
            return path
    message = f"reference data {'/'.join(parts)} not found beside the repository (../shared/data)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
