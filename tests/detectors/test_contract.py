"""The contract every registered detector keeps (detectors.registry, detectors._rules).

Run over every detector by the kind of input it judges: empty, all-missing, constant,
short and gappy inputs give a `skipped` reason, or, where the detector legitimately judges
them, no finding; a naive and an aware `since` behave alike; every option of the registry's
options model exists in the detector, with the same default, and a value of the wrong type
is refused by the detector with a ValueError naming the option; the same input gives the
same output; Detection.detector is the name the config uses.
"""
import inspect
import subprocess
import sys
import typing

import numpy as np
import pandas as pd
import pytest

from detectors import numeric_profile, registry

SERIES = [n for n, d in registry.REGISTRY.items() if d.input == registry.SERIES]
HISTORIES = [n for n, d in registry.REGISTRY.items()
             if d.input in (registry.SERIES, registry.CATEGORY_COUNTS, registry.PROFILES,
                            registry.COLUMN_PROFILE, registry.TABLE_PROFILE)]
CHECKS = [n for n, d in registry.REGISTRY.items() if d.input == registry.ROWS]

# options a detector can't run without (they have no default, or the detector needs one of
# two); chosen so that nothing in the inputs below breaks them
NEEDED = {"absolute": {"upper": 1e12}, "in_range": {"min": 0},
          "allowed_values": {"values": [1, 2, 3]}, "matches_pattern": {"pattern": r"\w+"},
          "expression": {"expr": "x >= 0"}}
# what the caller passes besides the options (the input, where it starts, names, masks)
SUPPLIED = {"series", "counts", "profiles", "df", "column", "columns", "since", "at", "mask",
            "name"}
DAYS = pd.date_range("2026-01-01", periods=120, freq="D")


def call(name: str, data, **options):
    entry = registry.detector(name)
    options = {**NEEDED.get(name, {}), **options}
    if entry.input == registry.ROWS:
        subject = {"column": ("x",), "columns": ("x",), None: ()}[entry.subject]
        return entry.function()(data, *subject, **options)
    return entry.function()(data, **options)


# --- inputs, by kind -------------------------------------------------------------------------


def metric(index=DAYS) -> pd.Series:
    """A weekly metric that steps up by half from day 70, with a spike on day 100."""
    rng = np.random.default_rng(7)
    values = 100 + 10 * np.sin(2 * np.pi * np.arange(len(index)) / 7) + rng.normal(0, 1, len(index))
    values[70:] *= 1.5
    values[100] *= 3
    return pd.Series(values, index=index)


def category_counts(index=DAYS[:40]) -> pd.DataFrame:
    counts = pd.DataFrame({"branch": 500.0, "online": 300.0, "partner_app": 0.0}, index=index)
    counts.iloc[30:, 2] = 200.0  # a new category on day 30
    return counts


def quantile_profiles(index=DAYS[:40]) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame([numeric_profile(rng.normal(10 if i < 30 else 14, 2, 500))
                         for i in range(len(index))], index=index)


def column_profiles(index=DAYS[:40]) -> pd.DataFrame:
    """A column's scalar metrics: unique ids until day 30, when its values flip sign and a
    tenth of them repeat."""
    rng = np.random.default_rng(11)
    rows = []
    for i in range(len(index)):
        values = rng.normal(50, 10, 400).round(1)
        if i >= 30:
            values = -values
        qs = np.quantile(values, [0.01, 0.25, 0.5, 0.75, 0.99])
        rows.append({"count": 400.0, "distinct": 400.0 - (40 if i >= 30 else 0),
                     "mean": values.mean(), "std": values.std(), "min": values.min(),
                     "max": values.max(), **dict(zip(["p01", "p25", "p50", "p75", "p99"], qs)),
                     "zeros": 0.0, "negatives": float((values < 0).sum())})
    return pd.DataFrame(rows, index=index)


def table_profiles(index=DAYS[:40]) -> pd.DataFrame:
    """A table's profile side by side; day 35 repeats day 34's content."""
    table = column_profiles(index).add_prefix("x.")
    table.insert(0, "row_count", 400.0 + np.arange(len(index)))
    table.iloc[35] = table.iloc[34]
    return table


def normal_input(name: str, index=None):
    kind = registry.detector(name).input
    if kind == registry.SERIES:
        return metric(*([] if index is None else [index]))
    if kind == registry.CATEGORY_COUNTS:
        return category_counts(*([] if index is None else [index[:40]]))
    if kind == registry.PROFILES:
        return quantile_profiles(*([] if index is None else [index[:40]]))
    if kind == registry.COLUMN_PROFILE:
        return column_profiles(*([] if index is None else [index[:40]]))
    if kind == registry.TABLE_PROFILE:
        return table_profiles(*([] if index is None else [index[:40]]))
    rng = np.random.default_rng(5)
    return pd.DataFrame({"x": rng.integers(1, 4, 200), "name": ["ab"] * 200})


def edge_input(kind: str, case: str):
    """The input of `kind` for an edge case (None: not sensible for that kind)."""
    days = DAYS[:40]
    if kind == registry.SERIES:
        gappy = pd.Series(np.nan, index=days)
        gappy.iloc[::7] = [100.0, 104.0, 98.0, 101.0, 99.0, 102.0]
        return {"empty": pd.Series([], dtype=float, index=pd.DatetimeIndex([])),
                "missing": pd.Series(np.nan, index=days),
                "constant": pd.Series(5.0, index=days),
                "short": pd.Series([5.0], index=days[:1]),
                "gappy": gappy}[case]
    table = {registry.CATEGORY_COUNTS: category_counts, registry.COLUMN_PROFILE: column_profiles,
             registry.TABLE_PROFILE: table_profiles}.get(kind, quantile_profiles)()
    return {"empty": pd.DataFrame(),
            "missing": pd.DataFrame(np.nan, index=table.index, columns=table.columns),
            "constant": pd.DataFrame([table.iloc[0].to_numpy()] * len(table),
                                     index=table.index, columns=table.columns),
            "short": table.iloc[:1],
            # a table has no gaps of its own: a partition without a batch has no row
            "gappy": None}[case]


# Where a detector judges an edge case rather than skipping it, and why (its docstring):
# a bound (absolute) needs no history, so a constant, a single or a gappy series is judged
# against it; a relative change (proportional) of a constant series is 0, and its
# "previous" baseline is the previous point that has a value, so gaps don't blind it;
# a constant category table or profile has nothing new and nothing drifting.
JUDGED = {("absolute", "constant"), ("absolute", "short"), ("absolute", "gappy"),
          ("proportional", "constant"), ("proportional", "gappy"),
          ("new_category", "constant"), ("drift", "constant"),
          ("profile_shift", "constant"), ("duplicates", "constant"), ("repeats", "constant")}


EDGES = [(name, case) for name in HISTORIES
         for case in ("empty", "missing", "constant", "short", "gappy")
         if edge_input(registry.detector(name).input, case) is not None]


@pytest.mark.parametrize("name, case", EDGES)
def test_edge_inputs_are_skipped_with_a_reason_or_judged_quiet(name, case):
    data = edge_input(registry.detector(name).input, case)

    detection = call(name, data)

    assert detection.findings == ()
    if (name, case) in JUDGED:
        assert detection.skipped is None
    else:
        assert isinstance(detection.skipped, str) and detection.skipped


def test_an_empty_batch_is_skipped_by_every_check():
    empty = normal_input("not_null").iloc[:0]
    for name in CHECKS:
        assert call(name, empty).skipped == "batch has no rows", name


# --- since -------------------------------------------------------------------------------------


def _seen(detection):
    return ([(pd.Timestamp(f.at).tz_localize(None) if pd.Timestamp(f.at).tz else f.at,
              round(f.value, 9)) for f in detection.findings], detection.skipped)


@pytest.mark.parametrize("name", HISTORIES)
def test_a_naive_and_an_aware_since_behave_alike(name):
    naive = normal_input(name)
    aware = normal_input(name, DAYS.tz_localize("UTC"))
    since = "2026-01-25"

    on_naive = call(name, naive, since=pd.Timestamp(since))
    naive_since = call(name, aware, since=pd.Timestamp(since))
    aware_since = call(name, aware, since=pd.Timestamp(since, tz="UTC"))
    as_text = call(name, aware, since=since)

    assert _seen(on_naive) == _seen(naive_since) == _seen(aware_since) == _seen(as_text)
    # an aware since said in another zone is the same instant
    in_paris = pd.Timestamp(since, tz="UTC").tz_convert("Europe/Paris")
    assert _seen(call(name, aware, since=in_paris)) == _seen(aware_since)


@pytest.mark.parametrize("since", [pd.Timestamp("2026-01-25", tz="UTC"), 12, "not a date"])
@pytest.mark.parametrize("name", HISTORIES)
def test_a_since_that_does_not_fit_a_naive_daily_index_is_refused_alike(name, since):
    with pytest.raises(ValueError, match="^since:"):
        call(name, normal_input(name), since=since)


@pytest.mark.parametrize("name", HISTORIES)
def test_since_leaves_earlier_points_as_context(name):
    whole = call(name, normal_input(name))
    later = call(name, normal_input(name), since=DAYS[35])

    assert {f.at for f in later.findings} <= {f.at for f in whole.findings}
    assert all(f.at >= DAYS[35] for f in later.findings)


# --- options -------------------------------------------------------------------------------


def _parameters(name: str) -> dict[str, inspect.Parameter]:
    signature = inspect.signature(registry.detector(name).function())
    return {p: v for p, v in signature.parameters.items() if p not in SUPPLIED}


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_the_options_model_lists_the_detectors_options_with_their_defaults(name):
    model = registry.detector(name).options
    fields = {f: info for f, info in model.model_fields.items()
              if f not in registry.CALLER_OPTIONS}
    parameters = _parameters(name)

    assert set(fields) == set(parameters)
    for option, info in fields.items():
        default = parameters[option].default
        if default is inspect.Parameter.empty:
            assert info.is_required(), option
        else:
            assert info.default == default, option


def _wrong_type(annotation) -> object:
    """A value of the wrong type for an option annotated so (None: no wrong type)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return "sideways"
    if annotation is typing.Any:
        return None
    optional = typing.get_origin(annotation) in (typing.Union, type(int | None))
    base = args[0] if optional else annotation
    return {float: "lots", int: 2.5, bool: "yes", str: 12}.get(
        base, "abc" if typing.get_origin(base) is list else None)


BAD = [(name, option, _wrong_type(info.annotation))
       for name, entry in registry.REGISTRY.items()
       for option, info in entry.options.model_fields.items()
       if option not in registry.CALLER_OPTIONS and _wrong_type(info.annotation) is not None]
BAD += [("in_range", "min", float("nan")), ("in_range", "max", float("nan")),
        ("anomalies", "max_anoms", 0.9), ("breakouts", "penalty", 0),
        ("proportional", "max_decrease", 1.5), ("drift", "alpha", 0),
        ("new_category", "min_share", 2.0), ("not_null", "max_fraction", 1.5)]


@pytest.mark.parametrize("name, option, value", BAD)
def test_each_bad_option_raises_value_error_naming_it(name, option, value):
    data = normal_input(name)
    with pytest.raises(ValueError, match=rf"\b{option}\b"):
        call(name, data, **{option: value})


@pytest.mark.parametrize("name, option, value", BAD[:-8])
def test_the_registry_refuses_the_same_ill_typed_options(name, option, value):
    with pytest.raises(ValueError, match=rf"^{option}: .*\(options of {name}: .*{option}"):
        registry.validate_options(name, {**NEEDED.get(name, {}), option: value})


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_every_choice_the_registry_allows_the_detector_takes(name):
    data = normal_input(name)
    for option, info in registry.detector(name).options.model_fields.items():
        if typing.get_origin(info.annotation) is typing.Literal:
            for choice in typing.get_args(info.annotation):
                call(name, data, **{option: choice})  # raises if the detector refuses it


def test_an_unknown_option_is_refused_naming_it_and_listing_the_allowed_ones():
    with pytest.raises(ValueError, match=r"^maxanoms: not an option of anomalies "
                                         r"\(options of anomalies: .*max_anoms"):
        registry.validate_options("anomalies", {"maxanoms": 0.01})
    with pytest.raises(ValueError, match="^detector: 'seasonal' is not one of"):
        registry.validate_options("seasonal", {})


# --- repeatability and names ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_the_same_input_gives_the_same_output_under_the_configs_name(name):
    first = call(name, normal_input(name))
    second = call(name, normal_input(name))

    assert first.detector == name
    assert (first.findings, first.skipped) == (second.findings, second.skipped)
    if first.band is not None:
        pd.testing.assert_frame_equal(first.band, second.band)


def test_the_series_detectors_find_what_the_metric_holds():
    # the contract's inputs are not all quiet: the checks above compare real findings
    found = {name: call(name, normal_input(name)).findings for name in HISTORIES}
    assert found["anomalies"] and found["breakouts"] and found["proportional"]
    assert found["new_category"] and found["drift"]
    assert found["profile_shift"] and found["duplicates"] and found["repeats"]


def test_importing_the_registry_loads_no_algorithm():
    code = ("import sys, detectors.registry; "
            "print(sorted(m for m in ('statsmodels', 'scipy', 'ruptures') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
