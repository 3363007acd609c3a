"""The rules every detector shares: which points are under test, how an option is checked,
how a number is written in a finding's detail.

Each was written once per detector and had drifted apart (a time-zone-aware `since` on a
naive daily index was accepted by some detectors and refused by others). Here they are
written once; the contract test (tests/detectors/test_contract.py) holds every registered
detector to them.

Option errors are `ValueError`s whose message starts with the option's name
("max_anoms: expected a number > 0 and <= 0.49, got 0.9"), so a config editor or a
monitor's failure points at the line to fix.
"""
from __future__ import annotations

import math
from collections.abc import Collection
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd


# --- the interval under test --------------------------------------------------------------


def under_test(index: pd.Index, since: Any) -> np.ndarray:
    """A boolean mask over `index`: True for the labels at or after `since` (every label
    when `since` is None). Earlier labels are context only.

    The one rule for times, the same for every detector. Against a DatetimeIndex, `since`
    is read as a time (a Timestamp, a datetime, a date or its text):
    - a naive `since` against a time-zone-aware index is read in the index's zone (a run
      passes the partition's day, and "2024-06-01" means that day where the data lives);
    - an aware `since` against an aware index is compared as an instant;
    - an aware `since` against a naive index is refused: a naive index says nothing of its
      zone, and guessing one would move a daily partition by the offset.
    A number against a DatetimeIndex, or text against a numeric index, is refused too.
    Refusals are `ValueError`s that start with "since:". An empty index has nothing under
    test whatever `since` is (an empty history often comes without a DatetimeIndex).
    """
    if since is None:
        return np.ones(len(index), dtype=bool)
    if len(index) == 0:
        return np.zeros(0, dtype=bool)
    if isinstance(index, pd.DatetimeIndex):
        return np.asarray(index >= _as_time(since, index.tz), dtype=bool)
    if pd.api.types.is_numeric_dtype(index.dtype) and not is_number(since):
        raise ValueError(f"since: {since!r} cannot be compared with a numeric index")
    try:
        return np.asarray(index >= since, dtype=bool)
    except (TypeError, ValueError) as error:
        raise ValueError(f"since: {since!r} cannot be compared with the index ({error})") \
            from None


def first_under_test(index: pd.Index, since: Any) -> int:
    """The position of the first label under test in a sorted index (len(index) when none
    is)."""
    mask = under_test(index, since)
    return int(np.argmax(mask)) if mask.any() else len(mask)


def _as_time(since: Any, tz: Any) -> pd.Timestamp:
    if is_number(since):
        raise ValueError(f"since: {since!r} is a number and the index holds times")
    try:
        start = pd.Timestamp(since)
    except (TypeError, ValueError) as error:
        raise ValueError(f"since: {since!r} is not a time ({error})") from None
    if pd.isna(start):
        raise ValueError(f"since: {since!r} is not a time")
    if start.tz is None and tz is not None:
        return start.tz_localize(tz)
    if start.tz is not None and tz is None:
        raise ValueError(f"since: {since!r} has a time zone and the index has none "
                         f"(pass a naive time, read as the index's own)")
    return start


# --- options --------------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    """A finite real number; True and False are not numbers here."""
    return (isinstance(value, Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def is_integer(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_number(value: Any, option: str, *, gt: float | None = None, ge: float | None = None,
                 lt: float | None = None, le: float | None = None,
                 allow_none: bool = False) -> float | None:
    """`value` as a float, when it is a finite number within the bounds given."""
    if value is None and allow_none:
        return None
    if not is_number(value) or not _within(float(value), gt, ge, lt, le):
        raise ValueError(f"{option}: expected {_wanted('a number', gt, ge, lt, le, allow_none)}"
                         f", got {value!r}")
    return float(value)


def check_integer(value: Any, option: str, *, ge: int | None = None,
                  allow_none: bool = False) -> int | None:
    """`value` as an int, when it is an integer (not a bool, not 2.0) at least `ge`."""
    if value is None and allow_none:
        return None
    if not is_integer(value) or (ge is not None and value < ge):
        raise ValueError(f"{option}: expected "
                         f"{_wanted('an integer', None, ge, None, None, allow_none)}, "
                         f"got {value!r}")
    return int(value)


def check_choice(value: Any, option: str, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{option}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def check_flag(value: Any, option: str, *, allow_none: bool = False) -> bool | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        wanted = "True, False or None" if allow_none else "True or False"
        raise ValueError(f"{option}: expected {wanted}, got {value!r}")
    return bool(value)


def _within(x: float, gt, ge, lt, le) -> bool:
    return ((gt is None or x > gt) and (ge is None or x >= ge)
            and (lt is None or x < lt) and (le is None or x <= le))


def _wanted(kind: str, gt, ge, lt, le, allow_none: bool) -> str:
    bounds = [f"{sign} {bound:g}" for sign, bound in ((">", gt), (">=", ge), ("<", lt), ("<=", le))
              if bound is not None]
    text = kind + (" " + " and ".join(bounds) if bounds else "")
    return text + (" or None" if allow_none else "")
