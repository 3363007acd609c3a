"""Static checks over one batch: what an on-call engineer reads in the alert."""
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from detectors import (allowed_values, conforms_to_types, expression, freshness, in_range,
                       matches_pattern, not_null, unique)


@pytest.fixture
def batch() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 3000
    df = pd.DataFrame({
        "customer_id": np.arange(n),
        "day": pd.Timestamp("2024-03-01"),
        "income": rng.normal(40_000, 8_000, n).round(2),
        "country": rng.choice(["FR", "DE", "ES"], n),
        "email": [f"user{i}@example.com" for i in range(n)],
    })
    return df


def test_not_null_reports_the_null_rows_as_evidence(batch):
    batch.loc[[17, 1234, 2999], "income"] = np.nan
    det = not_null(batch, "income", at="2024-03-01")
    assert det.fired
    (f,) = det.findings
    assert f.count == 3
    assert f.fraction == pytest.approx(3 / 3000)
    assert f.at == "2024-03-01"
    assert [e["_row"] for e in f.examples] == [17, 1234, 2999]
    assert all(e["income"] is None for e in f.examples)
    assert f.detail == "[not_null] income: 3 of 3,000 rows null (0.1%)"


def test_not_null_detail_reads_like_the_alert(batch):
    batch.loc[batch.index[:412], "income"] = np.nan
    (f,) = not_null(batch, "income").findings
    assert f.detail == "[not_null] income: 412 of 3,000 rows null (13.7%)"
    assert len(f.examples) == 5


def test_a_clean_column_passes_and_examples_are_capped(batch):
    assert not not_null(batch, "income").fired
    batch.loc[:99, "income"] = np.nan
    (f,) = not_null(batch, "income", examples=2).findings
    assert len(f.examples) == 2 and f.count == 100


def test_max_fraction_tolerates_a_few_failures(batch):
    batch.loc[:9, "income"] = np.nan  # 10 of 3000 = 0.33%
    assert not not_null(batch, "income", max_fraction=0.005).fired
    assert not_null(batch, "income", max_fraction=0.001).fired


def test_in_range_is_inclusive_and_ignores_nulls(batch):
    batch.loc[0, "income"] = -5.0
    batch.loc[1, "income"] = 0.0
    batch.loc[2, "income"] = np.nan
    (f,) = in_range(batch, "income", min=0, max=1_000_000).findings
    assert f.count == 1 and f.examples[0]["income"] == -5.0
    assert "outside [0, 1000000]" in f.detail


def test_in_range_on_timestamps_takes_date_strings(batch):
    batch.loc[5, "day"] = pd.Timestamp("2023-01-01")
    (f,) = in_range(batch, "day", min="2024-01-01").findings
    assert f.count == 1 and f.examples[0]["_row"] == 5


def test_allowed_values_names_the_strangers(batch):
    batch.loc[[3, 4], "country"] = ["XX", "ZZ"]
    (f,) = allowed_values(batch, "country", {"FR", "DE", "ES"}).findings
    assert f.count == 2
    assert "'XX', 'ZZ'" in f.detail


def test_unique_single_and_compound(batch):
    assert not unique(batch, "customer_id").fired
    batch.loc[10, "customer_id"] = 11
    (f,) = unique(batch, "customer_id").findings
    assert f.count == 2  # both rows that share the key
    assert sorted(e["_row"] for e in f.examples) == [10, 11]
    # the same id on two different days is fine for a (customer_id, day) key
    batch.loc[10, "day"] = pd.Timestamp("2024-03-02")
    assert not unique(batch, ["customer_id", "day"]).fired
    assert unique(batch, ["customer_id"]).fired


def test_unique_does_not_compare_null_keys(batch):
    batch["customer_id"] = batch["customer_id"].astype("float64")
    batch.loc[[1, 2], "customer_id"] = np.nan
    assert not unique(batch, "customer_id").fired


def test_matches_pattern(batch):
    batch.loc[42, "email"] = "not-an-email"
    (f,) = matches_pattern(batch, "email", r"[^@\s]+@[^@\s]+\.[a-z]+").findings
    assert f.count == 1 and f.examples[0]["email"] == "not-an-email"
    # search mode: anywhere in the value
    assert matches_pattern(batch, "email", r"@", full=False).findings[0].count == 1


def test_conforms_to_types_judges_values_of_a_text_batch():
    # a CSV read without types: everything is text, a few values are wrong
    df = pd.DataFrame({
        "id": ["1", "2", "3", "x4"],
        "amount": ["1.5", "2", "n/a", "4e3"],
        "active": ["true", "False", "1", "maybe"],
        "day": ["2024-01-01", "2024-01-02", "2024-01-03 12:30", "2024-01-04"],
        "seen_at": ["2024-01-01T10:00:00Z", "yesterday", None, "2024-01-04 08:00"],
        "name": ["a", "b", "c", "d"],
    })
    contract = {"id": "integer", "amount": "float", "active": "boolean", "day": "date",
                "seen_at": "timestamp", "name": "string"}
    (f,) = conforms_to_types(df, contract).findings
    assert "id (integer): 1 of 4 rows not integer" in f.detail
    assert "amount (float): 1 of 4 rows not float" in f.detail
    assert "active (boolean): 1 of 4 rows" in f.detail
    assert "day (date): 1 of 4 rows" in f.detail  # a time of day is not a date
    assert "seen_at (timestamp): 1 of 4 rows" in f.detail
    assert "name (string)" not in f.detail
    assert f.count == 3  # rows 1, 2 and 3 each hold at least one bad value
    assert [e["_row"] for e in f.examples] == [1, 2, 3]


def test_conforms_to_types_typed_frame_passes_and_missing_column_fails(batch):
    contract = {"customer_id": "integer", "day": "timestamp", "income": "float",
                "country": "string", "email": "string"}
    assert not conforms_to_types(batch, contract).fired
    (f,) = conforms_to_types(batch.drop(columns="country"), contract).findings
    assert "missing required column 'country'" in f.detail
    assert f.fraction == 1.0
    # an optional column may be absent
    assert not conforms_to_types(batch.drop(columns="country"), contract,
                                 required=["customer_id"]).fired
    # extra columns pass unless forbidden
    extra = batch.assign(debug=1)
    assert not conforms_to_types(extra, contract).fired
    assert "'debug' is not in the contract" in conforms_to_types(
        extra, contract, allow_extra=False).findings[0].detail


def test_integer_valued_floats_conform_to_integer():
    df = pd.DataFrame({"n": [1.0, 2.0, np.nan, 3.5]})
    (f,) = conforms_to_types(df, {"n": "integer"}).findings
    assert f.count == 1 and f.examples[0]["n"] == 3.5


def test_freshness_measures_lateness_against_the_expected_time():
    det = freshness("2024-03-01T09:30Z", expected_at="2024-03-01T06:00Z", tolerance="1h",
                    at="2024-03-01")
    (f,) = det.findings
    assert f.value == pytest.approx(3.5)
    assert f.upper == pytest.approx(1.0)
    assert "3.5 h after expected" in f.detail
    assert not freshness("2024-03-01T06:45Z", expected_at="2024-03-01T06:00Z",
                         tolerance=timedelta(hours=1)).fired


def test_freshness_of_a_batch_that_never_came():
    kwargs = dict(expected_at="2024-03-01T06:00", deadline_at="2024-03-01T08:00")
    assert freshness(None, now="2024-03-01T07:00", **kwargs).findings == ()
    (f,) = freshness(None, now="2024-03-01T10:00", **kwargs).findings
    assert "not arrived" in f.detail
    assert freshness(None, **kwargs).skipped


def test_expression_rule_must_hold_for_every_row(batch):
    batch["limit"] = batch["income"] * 2
    assert not expression(batch, "income <= limit").fired
    batch.loc[[5, 6], "limit"] = 0.0
    (f,) = expression(batch, "income <= limit and country in ['FR', 'DE', 'ES']").findings
    assert f.count == 2
    assert [e["_row"] for e in f.examples] == [5, 6]
    assert f.detail.startswith("[expression] income <= limit")


def test_sensitive_columns_are_masked_in_examples(batch):
    batch.loc[0, "income"] = np.nan
    (f,) = not_null(batch, "income", mask=["email"]).findings
    assert f.examples[0]["email"] == "***"


def test_an_empty_batch_is_skipped_not_failed(batch):
    assert not_null(batch.iloc[:0], "income").skipped == "batch has no rows"


@pytest.mark.parametrize("call, option", [
    (lambda df: not_null(df, "salary"), "salary"),
    (lambda df: in_range(df, "income", min=10, max=1), "min"),
    (lambda df: in_range(df, "income"), "min"),
    (lambda df: allowed_values(df, "country", "FR"), "values"),
    (lambda df: unique(df, ["customer_id", "nope"]), "nope"),
    (lambda df: matches_pattern(df, "email", "[a-"), "pattern"),
    (lambda df: expression(df, "income >"), "expression"),
    (lambda df: expression(df, "salary > 0"), "expression"),
    (lambda df: expression(df, "income * 2"), "expression"),
    (lambda df: conforms_to_types(df, {"income": "money"}), "contract"),
    (lambda df: conforms_to_types(df, {"income": "float"}, required=["x"]), "required"),
    (lambda df: not_null(df, "income", max_fraction=1.5), "max_fraction"),
    (lambda df: not_null(df, "income", examples=-1), "examples"),
    (lambda df: freshness("2024-01-01"), "expected_at"),
    (lambda df: freshness("2024-01-01", expected_at="2024-01-01", tolerance=-timedelta(1)),
     "tolerance"),
    (lambda df: freshness("2024-01-01", expected_at="2024-01-01", tolerance=3), "tolerance"),
])
def test_bad_options_raise_value_error_naming_them(batch, call, option):
    with pytest.raises(ValueError, match=option):
        call(batch)


def test_an_expression_can_let_nulls_through():
    df = pd.DataFrame({"amount": [1.0, np.nan, -1.0]})
    assert expression(df, "amount >= 0").findings[0].count == 2
    (f,) = expression(df, "amount.isna() or amount >= 0").findings
    assert f.count == 1 and f.examples[0]["_row"] == 2
