"""Every detector a monitor or a check can name, in one table: its function, the input it
judges and its options.

Config validation (monitors.config), evaluation (monitors.judge.evaluate) and the dashboard's
editor look detectors up here by the name the config uses, so a name is dispatched in one
place and an unknown or ill-typed option is refused when the config is loaded, not by the
next run's `TypeError`.

Importing this module loads no algorithm: a detector's function is imported on first use
(`Detector.function()`), so the CLI and the config loader do not pay for statsmodels, scipy
or ruptures.

An options model lists what a user may set, each option's type and default (the function's
own default). It checks names and types only; the ranges (alpha in (0, 1), ...) are the
detector's own checks (detectors._rules), which run on every call. `validate_options` runs
those same checks at config load by calling the detector on an empty input of its kind
(nothing to judge, so only the options are looked at): each range is written once, in the
detector, and a config that a run would refuse is refused when it loads.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from detectors.result import Detection

# --- what a detector judges -----------------------------------------------------------------

SERIES = "series"                      # a metric's series, one point per partition
CATEGORY_COUNTS = "category_counts"    # one row per partition, one column per category
PROFILES = "profiles"                  # per partition: quantiles, or category counts + other
COLUMN_PROFILE = "column_profile"      # per partition: every scalar metric of one column
TABLE_PROFILE = "table_profile"        # per partition: every scalar metric of the batch
ROWS = "rows"                          # one batch's rows (a static check)
INPUTS = (SERIES, CATEGORY_COUNTS, PROFILES, COLUMN_PROFILE, TABLE_PROFILE, ROWS)

# options read by the caller to build the input, not passed to the detector: `key` picks
# which stored series of a metric is judged (a quantile, a category's count); `columns` which
# columns a table profile holds
CALLER_OPTIONS = ("key", "columns")


# --- options models ------------------------------------------------------------------------


class Options(BaseModel):
    """Strict: a config's "0.05" in quotes is text, not the number the detector wants."""

    model_config = ConfigDict(extra="forbid", strict=True)


class SeriesOptions(Options):
    key: str = ""


class AnomaliesOptions(SeriesOptions):
    period: int | None = None
    max_anoms: float = 0.02
    alpha: float = 0.05
    direction: Literal["both", "up", "down"] = "both"
    trend: Literal["rolling", "median"] = "rolling"
    trend_window: int | None = None
    seasonal: Literal["median", "stl"] = "median"
    relative: bool | None = None
    episodes: bool = True
    sustained: bool = True
    min_change: float = 0.0


class BreakoutsOptions(SeriesOptions):
    period: int | None = None
    min_size: int | None = None
    penalty: float = 2.0
    min_change: float = 0.1


class AbsoluteOptions(SeriesOptions):
    lower: float | None = None
    upper: float | None = None


class ProportionalOptions(SeriesOptions):
    baseline: Literal["previous", "season", "median"] = "previous"
    period: int = 7
    seasons: int = 1
    window: int = 7
    max_increase: float | None = None
    max_decrease: float | None = None
    direction: Literal["both", "up", "down"] = "both"
    min_abs_change: float = 0.0


class DriftOptions(Options):
    reference: Literal["previous", "trailing"] = "trailing"
    window: int | None = None
    min_periods: int = 1
    kind: Literal["auto", "numeric", "categorical"] = "auto"
    other: str = "other"
    max_psi: float = 0.2
    max_ks: float | None = None
    max_js: float = 0.1
    alpha: float = 0.01
    bins: int = 10
    interpolation: Literal["pchip", "linear"] = "pchip"
    min_count: int = 30


class NewCategoryOptions(Options):
    lookback: int = 28
    min_share: float = 0.01
    min_history: int = 7


class ProfileShiftOptions(Options):
    window: int = 28
    min_history: int = 14
    threshold: float = 6.0
    min_change: float = 0.1
    min_extreme_change: float = 1.0
    min_share_change: float = 0.05


class DuplicatesOptions(Options):
    min_history: int = 7
    exact_limit: int = 100_000
    tolerance: float = 0.01


class RepeatsOptions(Options):
    columns: list[str] = []
    min_history: int = 7
    min_metrics: int = 3
    rtol: float = 1e-9


class CheckOptions(Options):
    max_fraction: float = 0.0
    examples: int = 5


class InRangeOptions(CheckOptions):
    # numbers, or dates and times for a date column (YAML reads 2024-01-01 as a date)
    min: Any = None
    max: Any = None


class AllowedValuesOptions(CheckOptions):
    values: list[Any]


class MatchesPatternOptions(CheckOptions):
    pattern: str
    full: bool = True

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        # refused when the config loads, not at the first batch the check meets
        from detectors.checks import (
            compile_pattern,  # pandas and RE2: only for this check
        )

        compile_pattern(value)
        return value


class ExpressionOptions(CheckOptions):
    expr: str


# --- the table -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Detector:
    name: str          # the name the config uses, and Detection.detector
    input: str         # one of INPUTS
    options: type[Options]
    where: str         # "module:function", imported on first use
    # a check's subject, passed before the options: "column", "columns" (a key: the
    # check's columns, or its column) or None (the check reads the whole batch)
    subject: str | None = None

    def function(self) -> Callable[..., Detection]:
        module, _, name = self.where.partition(":")
        return getattr(importlib.import_module(module), name)


_TABLE = (
    Detector("absolute", SERIES, AbsoluteOptions, "detectors.thresholds:absolute_threshold"),
    Detector("proportional", SERIES, ProportionalOptions,
             "detectors.thresholds:proportional_threshold"),
    Detector("anomalies", SERIES, AnomaliesOptions, "detectors.anomalies:detect_anomalies"),
    Detector("breakouts", SERIES, BreakoutsOptions, "detectors.breakouts:detect_breakouts"),
    Detector("drift", PROFILES, DriftOptions, "detectors.drift:detect_drift"),
    Detector("new_category", CATEGORY_COUNTS, NewCategoryOptions,
             "detectors.categories:detect_new_categories"),
    Detector("profile_shift", COLUMN_PROFILE, ProfileShiftOptions,
             "detectors.profiles:detect_profile_shift"),
    Detector("duplicates", COLUMN_PROFILE, DuplicatesOptions, "detectors.profiles:detect_duplicates"),
    Detector("repeats", TABLE_PROFILE, RepeatsOptions, "detectors.profiles:detect_repeats"),
    Detector("not_null", ROWS, CheckOptions, "detectors.checks:not_null", "column"),
    Detector("in_range", ROWS, InRangeOptions, "detectors.checks:in_range", "column"),
    Detector("allowed_values", ROWS, AllowedValuesOptions, "detectors.checks:allowed_values",
             "column"),
    Detector("unique", ROWS, CheckOptions, "detectors.checks:unique", "columns"),
    Detector("matches_pattern", ROWS, MatchesPatternOptions, "detectors.checks:matches_pattern",
             "column"),
    Detector("expression", ROWS, ExpressionOptions, "detectors.checks:expression"),
)
REGISTRY: dict[str, Detector] = {d.name: d for d in _TABLE}

# the names a monitor (over stored metrics) and a check (over a batch's rows) may use
MONITORS = tuple(d.name for d in _TABLE if d.input != ROWS)
CHECKS = tuple(d.name for d in _TABLE if d.input == ROWS)


def detector(name: str) -> Detector:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"detector: {name!r} is not one of {', '.join(REGISTRY)}") from None


def allowed_options(name: str) -> tuple[str, ...]:
    return tuple(detector(name).options.model_fields)


def validate_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options, as a plain dict, when detector `name` takes every one of them with the
    right type; else a ValueError naming each bad option and listing the allowed ones."""
    entry = detector(name)
    if not isinstance(options, Mapping):
        raise ValueError(f"options: expected a mapping of option -> value, "
                         f"got {type(options).__name__}")
    try:
        entry.options.model_validate(dict(options))
    except ValidationError as exc:
        raise ValueError(_explain(entry, exc)) from None
    _check_ranges(entry, options)
    return dict(options)


def _check_ranges(entry: Detector, options: Mapping[str, Any]) -> None:
    """The detector's own option checks (min_change >= 0 and < 10, ...), run on an empty
    input: a ValueError that starts with the option's name when one is out of range."""
    import pandas as pd  # config load only; the CLI's import stays light

    passed = {k: v for k, v in options.items() if k not in CALLER_OPTIONS}
    days = pd.DatetimeIndex([])
    if entry.input == ROWS:
        # a placeholder column for the subject: the batch has no rows, nothing is read
        subject = {"column": ("_",), "columns": (("_",),), None: ()}[entry.subject]
        entry.function()(pd.DataFrame({"_": pd.Series([], dtype=object)}), *subject, **passed)
    elif entry.input == SERIES:
        entry.function()(pd.Series([], index=days, dtype=float), **passed)
    else:
        entry.function()(pd.DataFrame(index=days), **passed)


def _explain(entry: Detector, exc: ValidationError) -> str:
    problems: dict[str, str] = {}
    for error in exc.errors():
        option = str(error["loc"][0]) if error["loc"] else "options"
        if error["type"] == "extra_forbidden":
            text = f"{option}: not an option of {entry.name}"
        elif error["type"] == "missing":
            text = f"{option}: required by {entry.name}"
        else:
            text = f"{option}: {error['msg'].lower()}, got {error['input']!r}"
        problems.setdefault(option, text)  # a union reports one error per member
    allowed = ", ".join(entry.options.model_fields)
    return f"{'; '.join(problems.values())} (options of {entry.name}: {allowed})"
