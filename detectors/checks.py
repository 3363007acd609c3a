"""Static checks over one batch: each asks a yes/no question of every row.

A failing check gives one Finding that a person can verify without opening the data: how
many rows failed, which fraction, and a few of them. Checks answer for one batch; `at` is
that batch's partition, passed through so the finding says which batch it is about.

Nulls belong to `not_null` alone: the other row checks look only at values that are
present, so one missing value is reported once, not by every check on that column.
"""
from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import re2

from detectors._rules import check_flag, check_integer, check_number
from detectors.result import Detection, Finding

LOGICAL_TYPES = ("integer", "float", "string", "boolean", "date", "timestamp")

# spellings of booleans that text formats (CSV, JSON lines written by hand) carry
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def not_null(df: pd.DataFrame, column: str, *, max_fraction: float = 0.0,
             examples: int = 5, at: Any = None, mask: Iterable[str] = ()) -> Detection:
    """Every row has a value in `column`."""
    _check_common("not_null", df, [column], max_fraction, examples)
    if df.empty:
        return _empty("not_null")
    failing = df[column].isna()
    return _verdict("not_null", df, failing, max_fraction, examples, at, mask,
                    subject=column, what="null")


def in_range(df: pd.DataFrame, column: str, *, min: Any = None, max: Any = None,
             max_fraction: float = 0.0, examples: int = 5, at: Any = None,
             mask: Iterable[str] = ()) -> Detection:
    """Every present value lies in [min, max], both ends inclusive; either end may be open."""
    _check_common("in_range", df, [column], max_fraction, examples)
    if min is None and max is None:
        raise ValueError("in_range: give min, max or both")
    values = df[column]
    low, high = _bound_like(values, min, "min"), _bound_like(values, max, "max")
    if low is not None and high is not None and low > high:
        raise ValueError(f"in_range: min ({min!r}) is greater than max ({max!r})")
    if df.empty:
        return _empty("in_range")
    present = values.notna()
    try:
        outside = pd.Series(False, index=df.index)
        if low is not None:
            outside |= present & (values < low)
        if high is not None:
            outside |= present & (values > high)
    except TypeError as exc:
        raise ValueError(f"in_range: min/max can't be compared with column {column!r} "
                         f"of dtype {values.dtype}: {exc}") from None
    bounds = f"[{_fmt_value(low) if low is not None else '-inf'}, " \
             f"{_fmt_value(high) if high is not None else 'inf'}]"
    return _verdict("in_range", df, outside.fillna(False).astype(bool), max_fraction, examples,
                    at, mask, subject=column, what=f"outside {bounds}")


def allowed_values(df: pd.DataFrame, column: str, values: Collection[Any], *,
                   max_fraction: float = 0.0, examples: int = 5, at: Any = None,
                   mask: Iterable[str] = ()) -> Detection:
    """Every present value belongs to `values`."""
    _check_common("allowed_values", df, [column], max_fraction, examples)
    if isinstance(values, (str, bytes)) or not isinstance(values, Collection) or not values:
        raise ValueError("allowed_values: values must be a non-empty collection "
                         "(a list or set, not a string)")
    if df.empty:
        return _empty("allowed_values")
    col = df[column]
    failing = col.notna() & ~col.isin(list(values))
    found = _distinct_sample(col[failing])
    return _verdict("allowed_values", df, failing, max_fraction, examples, at, mask,
                    subject=column, what="outside the allowed set",
                    extra=f"; e.g. {found}" if found else "")


def unique(df: pd.DataFrame, columns: str | Sequence[str], *, max_fraction: float = 0.0,
           examples: int = 5, at: Any = None, mask: Iterable[str] = ()) -> Detection:
    """No two rows share a key: one column, or a compound key of several.

    A row with a null in any key column is not compared, as in SQL's UNIQUE: a missing key
    is `not_null`'s business, and two unknowns are not known to be equal.
    """
    keys = [columns] if isinstance(columns, str) else list(columns)
    if not keys:
        raise ValueError("unique: columns must name at least one column")
    _check_common("unique", df, keys, max_fraction, examples)
    if df.empty:
        return _empty("unique")
    complete = df[keys].notna().all(axis=1)
    dup = pd.Series(False, index=df.index)
    dup[complete] = df.loc[complete, keys].duplicated(keep=False)
    n_keys = int(df.loc[dup, keys].drop_duplicates().shape[0]) if dup.any() else 0
    subject = keys[0] if len(keys) == 1 else "(" + ", ".join(keys) + ")"
    return _verdict("unique", df, dup, max_fraction, examples, at, mask, subject=subject,
                    what=f"sharing {n_keys:,} duplicated key{'s' if n_keys != 1 else ''}")


def compile_pattern(pattern: Any) -> re2._Regexp:
    """`pattern` compiled for RE2, a linear-time engine: a pattern is configuration that an
    operator (or whoever edits the monitors file) writes, and Python's backtracking engine
    takes exponential time on patterns such as `(a+)+$` against one long value, hanging the
    worker. RE2 has no backreferences or lookarounds (the constructs that need
    backtracking); such a pattern is refused saying so. Unlike Python's, its `\\d`, `\\w`, `\\s`
    and `\\b` are ASCII-only: write `\\pL` (any letter) or `\\pN` (any digit) for other scripts."""
    if not isinstance(pattern, str):
        raise ValueError(f"matches_pattern: pattern must be a string, not {type(pattern).__name__}")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"matches_pattern: pattern {pattern!r} is not a valid regular "
                         f"expression: {exc}") from None
    options = re2.Options()
    options.log_errors = False  # the error is raised below; RE2 would also print it on stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"matches_pattern: pattern {pattern!r} needs a construct the linear-time "
                         f"engine (RE2) does not run, such as a backreference or a lookaround "
                         f"({detail}); those can take exponential time") from None


def matches_pattern(df: pd.DataFrame, column: str, pattern: str, *, full: bool = True,
                    max_fraction: float = 0.0, examples: int = 5, at: Any = None,
                    mask: Iterable[str] = ()) -> Detection:
    """Every present value matches the regular expression `pattern` (the whole value when
    `full`, else anywhere in it). Non-text values are matched on their text form."""
    _check_common("matches_pattern", df, [column], max_fraction, examples)
    check_flag(full, "full")
    regex = compile_pattern(pattern)
    if df.empty:
        return _empty("matches_pattern")
    col = df[column]
    present = col.notna()
    test = regex.fullmatch if full else regex.search
    ok = col[present].astype(str).map(lambda v: test(v) is not None)
    failing = pd.Series(False, index=df.index)
    failing[present] = ~ok.astype(bool)
    return _verdict("matches_pattern", df, failing, max_fraction, examples, at, mask,
                    subject=column, what=f"not matching /{pattern}/")


def conforms_to_types(df: pd.DataFrame, contract: Mapping[str, str], *,
                      required: Iterable[str] | None = None, allow_extra: bool = True,
                      max_fraction: float = 0.0, examples: int = 5, at: Any = None,
                      mask: Iterable[str] = ()) -> Detection:
    """The batch holds the contract: its required columns exist and every present value can
    be read as its column's logical type (integer, float, string, boolean, date, timestamp).

    `required` defaults to every column of the contract. Values are judged one by one, so a
    text column of numbers passes as integer and the few rows that are not numbers are the
    evidence. A missing required column fails every row.
    """
    if not isinstance(contract, Mapping) or not contract:
        raise ValueError("conforms_to_types: contract must be a non-empty mapping "
                         "of column -> logical type")
    for name, kind in contract.items():
        if kind not in LOGICAL_TYPES:
            raise ValueError(f"conforms_to_types: contract[{name!r}] = {kind!r} is not one of "
                             f"{', '.join(LOGICAL_TYPES)}")
    needed = list(contract) if required is None else list(required)
    unknown = [c for c in needed if c not in contract]
    if unknown:
        raise ValueError(f"conforms_to_types: required names columns not in the contract: "
                         f"{unknown}")
    _check_common("conforms_to_types", df, [], max_fraction, examples)

    # schema problems fail the batch outright; value problems are tolerated up to max_fraction
    schema: list[str] = []
    values: list[str] = []
    failing = pd.Series(False, index=df.index)
    schema += [f"missing required column {c!r}" for c in needed if c not in df.columns]
    if not allow_extra:
        schema += [f"column {c!r} is not in the contract" for c in df.columns if c not in contract]
    if schema:
        failing[:] = True
    for name, kind in contract.items():
        if name not in df.columns:
            continue
        bad = _not_of_type(df[name], kind)
        if bad.any():
            n_bad = int(bad.sum())
            values.append(f"{name} ({kind}): {n_bad:,} of {len(df):,} rows not {kind}"
                          f"{_pct(n_bad, len(df))}; e.g. {_distinct_sample(df[name][bad])}")
            failing |= bad
    if df.empty and not schema:
        return _empty("conforms_to_types")
    n = len(df)
    count = int(failing.sum())
    fraction = count / n if n else 0.0
    if not schema and (not values or fraction <= max_fraction):
        return Detection("conforms_to_types")
    problems = schema + values
    detail = f"[conforms_to_types] {len(problems)} problem{'s' if len(problems) != 1 else ''}: " \
             + "; ".join(problems)
    return Detection("conforms_to_types", (Finding(
        at=at, value=float(count), expected=0.0, lower=None, upper=max_fraction * n,
        score=fraction, detail=detail, count=count, fraction=fraction,
        examples=_examples(df, failing, examples, mask)),))


def freshness(arrived_at: Any, *, expected_at: Any = None, deadline_at: Any = None,
              tolerance: Any = timedelta(0), now: Any = None, at: Any = None) -> Detection:
    """How late a batch arrived: late when it arrived after the deadline plus `tolerance`.

    The deadline is `deadline_at`, or `expected_at` when no deadline is given; lateness is
    measured from `expected_at` when given (so "3.0 h late, 1.0 h past the deadline").
    A batch that has not arrived (`arrived_at` None) is late once `now` is past the
    deadline; without `now` it can't be judged and the check is skipped. Naive timestamps
    are read as UTC.
    """
    if expected_at is None and deadline_at is None:
        raise ValueError("freshness: give expected_at, deadline_at or both")
    expected = _utc(expected_at, "expected_at")
    deadline = _utc(deadline_at, "deadline_at")
    arrived = _utc(arrived_at, "arrived_at")
    clock = _utc(now, "now")
    if isinstance(tolerance, (int, float, np.number)) or isinstance(tolerance, bool):
        raise ValueError("freshness: tolerance must be a duration (timedelta or '30min'), "
                         f"not the number {tolerance!r}")
    try:
        slack = pd.Timedelta(tolerance)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"freshness: tolerance {tolerance!r} is not a duration: {exc}") from None
    if slack < pd.Timedelta(0):
        raise ValueError(f"freshness: tolerance must not be negative, got {tolerance!r}")
    limit = (deadline if deadline is not None else expected) + slack
    start = expected if expected is not None else deadline
    since_what = "expected" if expected is not None else "the deadline"
    if arrived is None:
        if clock is None:
            return Detection("freshness", skipped="batch has not arrived and no 'now' was given")
        if clock <= limit:
            return Detection("freshness")
        late = _hours(clock - start)
        detail = (f"[freshness] batch not arrived: {late:.1f} h after {since_what} "
                  f"({_fmt_value(start)}), limit {_fmt_value(limit)}")
        return Detection("freshness", (Finding(
            at=at, value=None, expected=0.0, lower=None, upper=_hours(limit - start),
            score=_hours(clock - limit), detail=detail),))
    if arrived <= limit:
        return Detection("freshness")
    late = _hours(arrived - start)
    detail = (f"[freshness] batch arrived {late:.1f} h after {since_what} "
              f"({_fmt_value(arrived)} vs {_fmt_value(start)}); "
              f"{_hours(arrived - limit):.1f} h past the limit {_fmt_value(limit)}")
    return Detection("freshness", (Finding(
        at=at, value=late, expected=0.0, lower=None, upper=_hours(limit - start),
        score=_hours(arrived - limit), detail=detail),))


def expression(df: pd.DataFrame, expr: str, *, max_fraction: float = 0.0, examples: int = 5,
               at: Any = None, mask: Iterable[str] = ()) -> Detection:
    """A custom rule that must hold for every row, written as a pandas expression over the
    batch's columns (``"amount >= 0 and currency == 'EUR'"``, ``"end_at >= start_at"``),
    evaluated with DataFrame.eval. A row fails unless the expression is True for it, so a
    comparison with a null fails: a rule that should let nulls through says so
    (``"amount.isna() or amount >= 0"``)."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError("expression: expr must be a non-empty string")
    _check_common("expression", df, [], max_fraction, examples)
    if df.empty:
        return _empty("expression")
    try:
        result = df.eval(expr)
    except Exception as exc:  # noqa: BLE001 - eval raises anything from SyntaxError to KeyError
        raise ValueError(f"expression: {expr!r} can't be evaluated on this batch: "
                         f"{type(exc).__name__}: {exc}") from None
    if not isinstance(result, pd.Series) or len(result) != len(df):
        raise ValueError(f"expression: {expr!r} must give one True/False per row, "
                         f"not {type(result).__name__}")
    if not (pd.api.types.is_bool_dtype(result.dtype) or result.isna().all()):
        raise ValueError(f"expression: {expr!r} gives {result.dtype} values, not True/False")
    holds = result.fillna(False).astype(bool)
    return _verdict("expression", df, ~holds, max_fraction, examples, at, mask,
                    subject=expr, what="failing")


# --- shared machinery -------------------------------------------------------------------


def _check_common(check: str, df: Any, columns: Sequence[str], max_fraction: float,
                  examples: int) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{check}: df must be a pandas DataFrame, not {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{check}: column {missing[0]!r} is not in the batch "
                         f"(columns: {', '.join(map(str, df.columns[:20]))})")
    check_number(max_fraction, "max_fraction", ge=0, le=1)
    check_integer(examples, "examples", ge=0)


def _empty(detector: str) -> Detection:
    return Detection(detector, skipped="batch has no rows")


def _verdict(detector: str, df: pd.DataFrame, failing: pd.Series, max_fraction: float,
             n_examples: int, at: Any, mask: Iterable[str], *, subject: str, what: str,
             extra: str = "") -> Detection:
    n = len(df)
    count = int(failing.sum())
    fraction = count / n
    if count == 0 or fraction <= max_fraction:
        return Detection(detector)
    detail = f"[{detector}] {subject}: {count:,} of {n:,} rows {what}{_pct(count, n)}{extra}"
    if max_fraction > 0:
        detail += f"; tolerance {max_fraction:.1%}"
    return Detection(detector, (Finding(
        at=at, value=float(count), expected=0.0, lower=None, upper=max_fraction * n,
        score=fraction, detail=detail, count=count, fraction=fraction,
        examples=_examples(df, failing, n_examples, mask)),))


def _examples(df: pd.DataFrame, failing: pd.Series, n: int,
              mask: Iterable[str]) -> tuple[dict, ...]:
    hidden = set(mask)
    rows = df[failing.to_numpy()].head(n)
    out = []
    for label, row in rows.iterrows():
        record: dict[str, Any] = {"_row": _plain(label)}
        for col, value in row.items():
            record[str(col)] = "***" if col in hidden else _plain(value)
        out.append(record)
    return tuple(out)


def _plain(value: Any) -> Any:
    """A JSON-friendly Python value: evidence is stored with the alert and shown as text."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, (pd.Timedelta, timedelta)):
        return None if pd.isna(value) else str(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value) is True:
            return None
    except (TypeError, ValueError):
        pass
    return value


def _pct(count: int, n: int) -> str:
    return f" ({count / n:.1%})" if n else ""


def _fmt_value(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def _distinct_sample(values: pd.Series, k: int = 3) -> str:
    seen = list(dict.fromkeys(_plain(v) for v in values.head(200)))[:k]
    return ", ".join(repr(v) for v in seen)


def _bound_like(values: pd.Series, bound: Any, option: str) -> Any:
    """A bound in the column's terms: a date string against a datetime column is a date."""
    if bound is None:
        return None
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        try:
            ts = pd.Timestamp(bound)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"in_range: {option} {bound!r} is not a timestamp: {exc}") from None
        tz = getattr(values.dtype, "tz", None)
        if tz is not None and ts.tzinfo is None:
            ts = ts.tz_localize(tz)
        elif tz is None and ts.tzinfo is not None:
            ts = ts.tz_convert(None)
        return ts
    if isinstance(bound, float) and math.isnan(bound):
        raise ValueError(f"in_range: {option} must not be NaN")
    return bound


def _not_of_type(col: pd.Series, kind: str) -> pd.Series:
    """Rows whose present value can't be read as `kind`."""
    present = col.notna()
    dtype = col.dtype
    if kind == "integer":
        if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return pd.Series(False, index=col.index)
        if pd.api.types.is_bool_dtype(dtype):
            return present
        nums = _as_numbers(col)
        integral = nums.notna() & np.isfinite(nums.fillna(0.0)) & (nums.fillna(0.0) % 1 == 0)
        return present & ~integral
    if kind == "float":
        if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            return pd.Series(False, index=col.index)
        if pd.api.types.is_bool_dtype(dtype):
            return present
        return present & _as_numbers(col).isna()
    if kind == "string":
        if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
            return pd.Series(False, index=col.index)
        return present & ~col.map(lambda v: isinstance(v, str)).astype(bool)
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(dtype):
            return pd.Series(False, index=col.index)
        return present & ~col.map(_looks_boolean).astype(bool)
    if kind in ("date", "timestamp"):
        if pd.api.types.is_datetime64_any_dtype(dtype):
            if kind == "timestamp":
                return pd.Series(False, index=col.index)
            ts = col
        elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            return present
        else:
            ts = _parse_timestamps(col)
        parsed = ts.notna()
        bad = present & ~parsed
        if kind == "date":
            # a date column holds calendar days: a time of day other than midnight is not one
            times = pd.to_datetime(ts[parsed], utc=True)
            has_time = pd.Series(False, index=col.index)
            has_time[parsed] = (times - times.dt.floor("D")) != pd.Timedelta(0)
            bad |= has_time
        return bad
    raise ValueError(f"unknown logical type {kind!r}")


def _as_numbers(col: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.astype("float64")
    # True is not the number 1 to a contract, even though Python says so
    cleaned = col.map(lambda v: None if isinstance(v, (bool, np.bool_))
                      else v.strip() if isinstance(v, str) else v)
    return pd.to_numeric(cleaned, errors="coerce").astype("float64")


def _looks_boolean(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    if isinstance(value, (int, np.integer)):
        return value in (0, 1)
    if isinstance(value, str):
        return value.strip().lower() in _TRUE | _FALSE
    return False


def _parse_timestamps(col: pd.Series) -> pd.Series:
    """Timestamps read from text; anything else (a number, an object) is not one: epoch
    numbers in a text column are more often a mistake than a convention."""
    out = pd.Series(pd.NaT, index=col.index, dtype="datetime64[us, UTC]")
    is_text = col.map(lambda v: isinstance(v, str) and bool(v.strip())).astype(bool)
    if is_text.any():
        out[is_text] = pd.to_datetime(col[is_text].str.strip(), errors="coerce",
                                      format="mixed", utc=True)
    is_stamp = col.map(lambda v: isinstance(v, (pd.Timestamp, datetime))).astype(bool)
    if is_stamp.any():
        out[is_stamp] = pd.to_datetime(col[is_stamp], utc=True)
    return out


def _utc(value: Any, option: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"freshness: {option} {value!r} is not a timestamp: {exc}") from None
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _hours(delta: pd.Timedelta) -> float:
    return delta.total_seconds() / 3600.0
