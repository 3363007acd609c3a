"""A store that cannot be used (unreachable, read-only, corrupt, full, its file deleted under
the server) is one error line on the page, not a traceback: the entry point wraps every page
in `store_faults_shown`, and each live fragment is wrapped by `shows_store_faults`, since a
fragment's rerun does not go through the entry point."""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from dashboard.services import store_fault
from dashboard.text import md


@contextmanager
def store_faults_shown() -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # only the store's faults are caught: anything else is re-raised
        fault = store_fault(exc)
        if fault is None:
            raise
        # nothing was changed: an action that met the fault is refused whole
        st.error(md(fault))


def shows_store_faults(function: Callable) -> Callable:
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with store_faults_shown():
            return function(*args, **kwargs)
    return wrapper
