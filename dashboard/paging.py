"""Paging a long table: the rule every paged table of the dashboard follows (the alerts,
the stages). Rows are paged in SQL by the service (`services.PAGE_SIZE` a page); the page
keeps its filters in one dict and its page number under `<prefix>.page`: new filters go
back to the first page, and the page picker shows only when there is more than one."""
from __future__ import annotations

import streamlit as st

from dashboard import services

state = st.session_state


def current_page(prefix: str, query: dict) -> tuple[int, bool]:
    """The 1-based page to load under `query`, and whether `query` changed since the last
    run (the page is then back to 1, and anything chosen on the old rows means nothing)."""
    changed = state.get(f"{prefix}.query") != query
    if changed:
        state[f"{prefix}.query"] = query
        state[f"{prefix}.page"] = 1
    return max(int(state.get(f"{prefix}.page", 1)), 1), changed


def page_count(total: int) -> int:
    return max(1, -(-total // services.PAGE_SIZE))


def showing(total: int, page: int, rows: int, what: str, order: str) -> str:
    """ "240 stage run(s) match; showing 51–100, failed and held first" """
    first = (page - 1) * services.PAGE_SIZE
    return f"{total} {what} match" + (f"; showing {first + 1}–{first + rows}, {order}"
                                      if total else "")


def page_picker(prefix: str, total: int, container=st) -> None:
    """The page number input, drawn only when the rows fill more than one page."""
    pages = page_count(total)
    if state.get(f"{prefix}.page", 1) > pages:  # fewer rows since (an action, a filter)
        state[f"{prefix}.page"] = pages
    if pages > 1:
        container.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1,
                               key=f"{prefix}.page")
