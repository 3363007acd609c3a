"""The batch profiler agrees with pandas, whatever the chunking, and stays bounded."""
from __future__ import annotations

import decimal
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitors.intake.profile import (
    MAX_KEY_CHARS,
    QUANTILES,
    BatchProfiler,
    MetricValue,
    profile_table,
)

ROWS = 5_000
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


def _known_frame(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 1, ROWS)
    income[rng.random(ROWS) < 0.1] = np.nan
    age = pd.array(rng.integers(18, 90, ROWS), dtype="Int64")
    age[rng.random(ROWS) < 0.05] = pd.NA
    # weights that give every category a different count, so the top-k order is unambiguous
    weights = np.arange(len(CATEGORIES), 0, -1) / sum(range(1, len(CATEGORIES) + 1))
    segment = pd.Series(rng.choice(CATEGORIES, ROWS, p=weights), dtype="str")
    segment[rng.random(ROWS) < 0.02] = None
    return pd.DataFrame({
        "income": income,
        "age": age,
        "balance": rng.normal(0, 500, ROWS).round(0),
        "segment": segment,
        "customer": pd.Series([f"c{n:07d}" for n in rng.permutation(ROWS * 3)[:ROWS]], dtype="str"),
        "active": pd.array(rng.random(ROWS) < 0.3, dtype="boolean"),
        "seen_at": pd.to_datetime(1_700_000_000 + rng.integers(0, 86_400 * 30, ROWS), unit="s", utc=True),
    })


def _index(metrics: list[MetricValue]) -> dict[tuple[str | None, str, str], float]:
    found: dict[tuple[str | None, str, str], float] = {}
    for m in metrics:
        key = (m.column, m.metric, m.key)
        assert key not in found, f"metric emitted twice: {key}"
        found[key] = m.value
    return found


def _chunks(table: pa.Table, n: int) -> list[pa.RecordBatch]:
    size = math.ceil(table.num_rows / n)
    return table.combine_chunks().to_batches(max_chunksize=size)


def _profile(table: pa.Table, chunks: int, **options) -> dict:
    profiler = BatchProfiler(table.schema, **options)
    parts = _chunks(table, chunks)
    assert len(parts) == chunks
    for part in parts:
        profiler.update(part)
    return _index(profiler.metrics())


def _within_rank(ordered: np.ndarray, value: float, q: float, error: float) -> bool:
    """Whether ``value`` sits within ``error`` of rank ``q``; a tied value spans a range of ranks."""
    low = np.searchsorted(ordered, value, side="left") / len(ordered)
    high = np.searchsorted(ordered, value, side="right") / len(ordered)
    return low - error <= q <= high + error


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _known_frame()


@pytest.fixture(scope="module")
def profile(frame) -> dict:
    return _index(profile_table(frame, top_k=3))


def test_table_level_counts(profile, frame):
    assert profile[(None, "row_count", "")] == ROWS
    assert profile[(None, "column_count", "")] == frame.shape[1]


@pytest.mark.parametrize("column", ["income", "age", "balance", "segment", "customer", "active", "seen_at"])
def test_counts_nulls_and_distinct_equal_pandas(profile, frame, column):
    series = frame[column]
    assert profile[(column, "count", "")] == series.count()
    assert profile[(column, "nulls", "")] == series.isna().sum()
    assert profile[(column, "null_fraction", "")] == pytest.approx(series.isna().mean())
    assert profile[(column, "distinct", "")] == series.nunique()


@pytest.mark.parametrize("column", ["income", "age", "balance"])
def test_numeric_summary_equals_pandas(profile, frame, column):
    series = frame[column].astype("float64")
    assert profile[(column, "min", "")] == series.min()
    assert profile[(column, "max", "")] == series.max()
    assert profile[(column, "mean", "")] == pytest.approx(series.mean(), rel=1e-12)
    assert profile[(column, "std", "")] == pytest.approx(series.std(), rel=1e-12)
    for name, q in QUANTILES.items():
        assert profile[(column, name, "")] == pytest.approx(series.quantile(q), rel=1e-12), name
    assert profile[(column, "zeros", "")] == (series == 0).sum()
    assert profile[(column, "negatives", "")] == (series < 0).sum()


def test_string_lengths_and_top_k_equal_pandas(profile, frame):
    lengths = frame["segment"].str.len()
    assert profile[("segment", "length_min", "")] == lengths.min()
    assert profile[("segment", "length_max", "")] == lengths.max()
    assert profile[("segment", "length_mean", "")] == pytest.approx(lengths.mean())
    counts = frame["segment"].value_counts()
    top = {k: v for (c, m, k), v in profile.items() if c == "segment" and m == "freq"}
    assert top == {key: float(n) for key, n in counts.head(3).items()}
    assert profile[("segment", "freq_other", "")] == counts.iloc[3:].sum()


def test_booleans_get_true_false_frequencies(profile, frame):
    counts = frame["active"].value_counts()
    assert profile[("active", "freq", "true")] == counts[True]
    assert profile[("active", "freq", "false")] == counts[False]
    assert profile[("active", "freq_other", "")] == 0


def test_timestamps_give_epoch_seconds(profile, frame):
    assert profile[("seen_at", "min", "")] == frame["seen_at"].min().timestamp()
    assert profile[("seen_at", "max", "")] == frame["seen_at"].max().timestamp()


def test_dates_give_epoch_seconds():
    table = pa.table({"day": pa.array([0, 19_000, None, 19_700], pa.date32())})
    found = _index(profile_table(table))
    assert found[("day", "min", "")] == 0
    assert found[("day", "max", "")] == 19_700 * 86_400
    assert found[("day", "distinct", "")] == 3


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_timestamps_of_every_unit_give_epoch_seconds(unit):
    moments = pd.Series(pd.to_datetime(["2026-03-01 12:00:00.123456", "1969-12-31 23:59:58.25"], utc=True))
    table = pa.table({"at": pa.array(moments).cast(pa.timestamp(unit, tz="UTC"), safe=False)})
    found = _index(profile_table(table))
    expected = [m.timestamp() for m in table.column("at").to_pandas()]
    assert found[("at", "min", "")] == min(expected)
    assert found[("at", "max", "")] == max(expected)


def test_integer_codes_named_categorical_get_frequencies():
    table = pa.table({"code": pa.array([3, 3, 3, 7, 7, 1, None], pa.int64())})
    found = _index(profile_table(table, categorical=["code"], top_k=2))
    assert found[("code", "freq", "3")] == 3
    assert found[("code", "freq", "7")] == 2
    assert found[("code", "freq_other", "")] == 1
    assert found[("code", "mean", "")] == pytest.approx(np.mean([3, 3, 3, 7, 7, 1]))
    assert ("code", "freq", "3") not in _index(profile_table(table))


def test_a_huge_value_among_the_top_k_is_stored_under_a_short_key_of_its_own():
    shared = "x" * 1_000_000  # a megabyte of free text taken for a category
    table = pa.table({"note": [shared + "a"] * 3 + [shared + "b"] * 2 + ["short"]})
    found = _index(profile_table(table, top_k=3))
    keys = {key: n for (column, metric, key), n in found.items() if metric == "freq"}
    assert keys.pop("short") == 1
    assert sorted(keys.values()) == [2, 3]  # a shared prefix does not merge them
    assert all(len(key) <= MAX_KEY_CHARS and key.startswith("xxx") for key in keys)


def test_seven_chunks_give_the_one_chunk_result(frame):
    table = pa.Table.from_pandas(frame, preserve_index=False)
    whole = _profile(table, 1, top_k=3)
    parts = _profile(table, 7, top_k=3)
    assert whole.keys() == parts.keys()
    for key, value in whole.items():
        assert parts[key] == pytest.approx(value, rel=1e-12, abs=1e-9), key


def test_distinct_past_the_exact_limit_is_a_sketch_within_two_percent():
    rng = np.random.default_rng(3)
    values = rng.permutation(np.arange(300_000, dtype=np.int64) * 7919)
    values = np.concatenate([values, values[:100_000]])  # repeats must not count twice
    table = pa.table({"n": values, "s": pa.array([f"k{v}" for v in values])})
    found = _profile(table, 7, exact_distinct_limit=10_000)
    for column in ("n", "s"):
        assert found[(column, "distinct", "")] == pytest.approx(300_000, rel=0.02), column


def test_frequent_categories_survive_past_the_exact_limit():
    rng = np.random.default_rng(5)
    noise = [f"rare{n}" for n in range(50_000)]
    heavy = ["A"] * 30_000 + ["B"] * 20_000 + ["C"] * 10_000
    values = np.array(noise + heavy, dtype=object)[rng.permutation(len(noise) + len(heavy))]
    table = pa.table({"s": pa.array(values, pa.string())})
    found = _profile(table, 7, exact_distinct_limit=1_000, top_k=3)
    top = {k: v for (c, m, k), v in found.items() if m == "freq"}
    assert list(top) == ["A", "B", "C"]
    for key, expected in (("A", 30_000), ("B", 20_000), ("C", 10_000)):
        assert top[key] == pytest.approx(expected, rel=0.02)
    assert found[("s", "freq_other", "")] == pytest.approx(50_000, rel=0.05)


def test_quantiles_past_the_exact_limit_come_from_a_sketch():
    rng = np.random.default_rng(11)
    values = rng.normal(100, 15, 200_000)
    table = pa.table({"x": values})
    found = _profile(table, 7, exact_quantile_limit=10_000)
    ordered = np.sort(values)
    for name, q in QUANTILES.items():
        assert _within_rank(ordered, found[("x", name, "")], q, 0.01), name
    # moments stay exact whatever happens to the quantiles
    assert found[("x", "mean", "")] == pytest.approx(values.mean(), rel=1e-12)
    assert found[("x", "std", "")] == pytest.approx(values.std(ddof=1), rel=1e-12)


def test_a_low_cardinality_column_keeps_exact_quantiles_at_any_length():
    rng = np.random.default_rng(13)
    values = rng.integers(18, 95, 120_000).astype(np.float64)
    found = _profile(pa.table({"age": values}), 7, exact_quantile_limit=1_000)
    for name, q in QUANTILES.items():
        assert found[("age", name, "")] == pytest.approx(np.quantile(values, q), rel=1e-12), name


def test_quantiles_stay_exact_when_distinct_values_outgrow_their_table_early():
    rng = np.random.default_rng(17)
    values = rng.normal(0, 1, 50_000)
    found = _profile(pa.table({"x": values}), 7, exact_distinct_limit=1_000)
    for name, q in QUANTILES.items():
        assert found[("x", name, "")] == pytest.approx(np.quantile(values, q), rel=1e-12), name


def test_a_column_turning_high_cardinality_late_hands_its_counts_to_the_sketch():
    rng = np.random.default_rng(19)
    values = np.concatenate([rng.integers(0, 10, 60_000).astype(np.float64), rng.normal(5, 3, 60_000)])
    found = _profile(pa.table({"x": values}), 7, exact_distinct_limit=1_000, exact_quantile_limit=5_000)
    ordered = np.sort(values)
    for name, q in QUANTILES.items():
        assert _within_rank(ordered, found[("x", name, "")], q, 0.01), name
    assert found[("x", "distinct", "")] == pytest.approx(len(np.unique(values)), rel=0.02)


def test_a_table_outgrown_only_when_the_metrics_are_asked_for_still_counts_everything():
    # 80k then 50k new values: the second chunk waits unmerged, and only metrics() finds the
    # union beyond the 100k bound
    rng = np.random.default_rng(23)
    values = rng.permutation(130_000).astype(np.float64) / 8
    profiler = BatchProfiler(pa.schema([("x", pa.float64())]))
    profiler.update(pa.record_batch({"x": values[:80_000]}))
    profiler.update(pa.record_batch({"x": values[80_000:]}))
    found = _index(profiler.metrics())
    assert found[("x", "distinct", "")] == pytest.approx(130_000, rel=0.02)
    for name, q in QUANTILES.items():
        assert found[("x", name, "")] == pytest.approx(np.quantile(values, q), rel=1e-12), name


def test_nan_is_a_null_and_infinity_is_counted_apart():
    table = pa.table({"x": pa.array([1.0, np.nan, None, 3.0, np.inf, -np.inf, 0.0, -0.0])})
    found = _index(profile_table(table))
    assert found[("x", "nulls", "")] == 2
    assert found[("x", "count", "")] == 6
    assert found[("x", "infinite", "")] == 2
    # moments and extremes describe the finite values
    finite = [1.0, 3.0, 0.0, 0.0]
    assert found[("x", "mean", "")] == pytest.approx(np.mean(finite))
    assert found[("x", "std", "")] == pytest.approx(np.std(finite, ddof=1))
    assert (found[("x", "min", "")], found[("x", "max", "")]) == (0.0, 3.0)
    assert found[("x", "zeros", "")] == 2
    assert found[("x", "negatives", "")] == 1
    # 0.0 and -0.0 are one value, as in pandas
    assert found[("x", "distinct", "")] == pd.Series([1.0, 3.0, np.inf, -np.inf, 0.0, -0.0]).nunique()


def test_an_empty_batch_profiles_to_zero_rows(frame):
    table = pa.Table.from_pandas(frame, preserve_index=False).slice(0, 0)
    found = _index(profile_table(table))
    assert found[(None, "row_count", "")] == 0
    assert found[("income", "count", "")] == 0
    assert found[("segment", "distinct", "")] == 0
    assert ("income", "mean", "") not in found
    assert all(math.isfinite(v) for v in found.values())


def test_a_profiler_fed_nothing_reports_zero_rows():
    profiler = BatchProfiler(pa.schema([("x", pa.float64()), ("s", pa.string())]))
    found = _index(profiler.metrics())
    assert found[(None, "row_count", "")] == 0
    assert found[(None, "column_count", "")] == 2


def test_an_all_null_column_has_counts_and_no_undefined_values():
    table = pa.table({"x": pa.nulls(10, pa.float64()), "s": pa.nulls(10, pa.string()),
                      "t": pa.nulls(10, pa.timestamp("us", tz="UTC"))})
    found = _index(profile_table(table))
    for column in ("x", "s", "t"):
        assert found[(column, "count", "")] == 0
        assert found[(column, "nulls", "")] == 10
        assert found[(column, "null_fraction", "")] == 1
        assert found[(column, "distinct", "")] == 0
        assert (column, "min", "") not in found
    assert found[("s", "freq_other", "")] == 0
    assert all(math.isfinite(v) for v in found.values())


def test_decimals_and_dictionary_strings_are_profiled_by_their_values():
    table = pa.table({
        "amount": pa.array([decimal.Decimal("1.25"), decimal.Decimal("-2.50"), None], pa.decimal128(10, 2)),
        "tag": pa.array(["a", "b", "a"]).dictionary_encode(),
    })
    found = _index(profile_table(table))
    assert found[("amount", "mean", "")] == pytest.approx(-0.625)
    assert found[("amount", "negatives", "")] == 1
    assert found[("tag", "freq", "a")] == 2


def test_chunks_cast_to_the_declared_schema():
    profiler = BatchProfiler(pa.schema([("x", pa.float64())]))
    profiler.update(pa.record_batch({"x": pa.array([1, 2], pa.int32())}))
    assert _index(profiler.metrics())[("x", "mean", "")] == 1.5


def test_impossible_settings_are_refused():
    schema = pa.schema([("x", pa.int64())])
    with pytest.raises(ValueError, match="categorical"):
        BatchProfiler(schema, categorical=["nope"])
    with pytest.raises(ValueError, match="top_k"):
        BatchProfiler(schema, top_k=-1)
    with pytest.raises(ValueError, match="lacks"):
        BatchProfiler(schema).update(pa.record_batch({"y": [1]}))


def test_past_the_exact_limit_numbers_stay_exactly_counted_while_fewer_than_the_sketch_keeps():
    # the sketch keeps 131,072 hashes and distinct numbers never share one: below that the
    # count is exact, where an estimate would be off by tens or hundreds
    rng = np.random.default_rng(29)
    values = rng.normal(0, 1, 60_000)
    times = pa.array(1_700_000_000_000_000 + rng.permutation(60_000) * 1_000_000, pa.int64())
    table = pa.table({"x": np.concatenate([values, values[:10_000]]),
                      "t": pa.concat_arrays([times, times.slice(0, 10_000)]).cast(pa.timestamp("us", tz="UTC"))})
    found = _profile(table, 3, exact_distinct_limit=1_000)
    assert found[("x", "distinct", "")] == 60_000
    assert found[("t", "distinct", "")] == 60_000


def test_a_near_unique_column_goes_to_the_sketch_and_keeps_its_exact_metrics():
    rng = np.random.default_rng(31)
    values = rng.permutation(400_000).astype(np.int64) * 7919 - 1_000_000_000
    found = _profile(pa.table({"id": values}), 2)  # default limits: 200k-row chunks outgrow 100k at once
    # the sketch's relative standard error is 1/sqrt(131072) ~ 0.28%: 1% is 3.6 of them
    assert found[("id", "distinct", "")] == pytest.approx(400_000, rel=0.01)
    for name, q in QUANTILES.items():
        assert found[("id", name, "")] == pytest.approx(np.quantile(values, q), rel=1e-12), name
    assert found[("id", "mean", "")] == pytest.approx(values.mean(), rel=1e-12)
    assert found[("id", "negatives", "")] == np.count_nonzero(values < 0)


def test_a_column_that_only_looks_unique_keeps_its_exact_table():
    # 90k distinct values over 240k rows: a sample of the first chunk looks unique, but the
    # column never holds more than the exact limit, so everything stays exact
    rng = np.random.default_rng(37)
    pool = rng.normal(50, 10, 90_000).round(6)
    values = np.concatenate([pool, rng.choice(pool, 150_000)])[rng.permutation(240_000)]
    found = _profile(pa.table({"x": values}), 2, exact_quantile_limit=1_000)
    assert found[("x", "distinct", "")] == len(np.unique(values))
    for name, q in QUANTILES.items():
        assert found[("x", name, "")] == pytest.approx(np.quantile(values, q), rel=1e-12), name


def test_strings_of_any_length_and_alphabet_are_counted_within_the_sketch_error():
    short = [f"ключ-{n}" for n in range(150_000)]
    long = ["x" * 100 + str(n) for n in range(150_000)]  # past the hash's table of positions
    values = pa.array(short + long + ["", ""] + short[:5_000], pa.string())
    found = _profile(pa.table({"s": values}), 4, exact_distinct_limit=1_000)
    assert found[("s", "distinct", "")] == pytest.approx(300_001, rel=0.01)


def _encoded_chunks(values: pa.Array, size: int) -> list[pa.RecordBatch]:
    """``values`` as chunks of dictionary-encoded text, each with its own dictionary: one
    with a repeated and an unused dictionary entry, as Arrow allows, and one left plain."""
    chunks = []
    for n, start in enumerate(range(0, len(values), size)):
        part = values.slice(start, size)
        if n == 0:  # first: nothing is merged into its table before it stands alone
            encoded = part.dictionary_encode()
            # the same value twice in the dictionary, the codes split between both, and one
            # entry no row uses
            dictionary = pa.concat_arrays([encoded.dictionary, encoded.dictionary.slice(0, 1),
                                           pa.array(["never used"])])
            indices = np.array(encoded.indices.fill_null(0))
            indices[1::2] = np.where(indices[1::2] == 0, len(encoded.dictionary), indices[1::2])
            codes = pa.array(indices, pa.int32(), mask=np.asarray(part.is_null()))
            part = pa.DictionaryArray.from_arrays(codes, dictionary)
        elif n != 1:
            part = part.dictionary_encode()
        chunks.append(pa.record_batch({"s": part}))
    return chunks


@pytest.mark.parametrize("limit", [100_000, 300])
def test_dictionary_encoded_text_gives_the_profile_of_plain_text(limit):
    # the exact table (default limit) and, past 300 values, the sketch and frequent items
    rng = np.random.default_rng(41)
    words = np.array([f"w{n}-{'é' * (n % 3)}" for n in range(2_000)], dtype=object)
    values = pa.array(words[rng.zipf(1.3, 12_000) % len(words)].tolist(),
                      mask=rng.random(12_000) < 0.05)
    plain = BatchProfiler(pa.schema([("s", pa.string())]), exact_distinct_limit=limit, top_k=5)
    encoded = BatchProfiler(pa.schema([("s", pa.string())]), exact_distinct_limit=limit, top_k=5)
    for chunk in pa.table({"s": values}).to_batches(max_chunksize=3_000):
        plain.update(chunk)
    for chunk in _encoded_chunks(values, 3_000):
        encoded.update(chunk)
    assert _index(encoded.metrics()) == _index(plain.metrics())


def test_a_dictionary_repeating_a_value_counts_it_as_one():
    part = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 2], pa.int32()), pa.array(["a", "b", "a"]))
    found = _index(profile_table(pa.table({"s": part})))
    assert found[("s", "distinct", "")] == 2
    assert found[("s", "freq", "a")] == 3


def test_a_dictionary_holding_a_null_is_profiled_by_its_values():
    codes = pa.array([0, 1, 1, None, 2], pa.int32())
    part = pa.DictionaryArray.from_arrays(codes, pa.array(["a", None, "bb"]))
    found = _index(profile_table(pa.table({"s": part})))
    assert found[("s", "nulls", "")] == 3
    assert found[("s", "freq", "a")] == 1 and found[("s", "freq", "bb")] == 1
    assert found[("s", "length_mean", "")] == 1.5


def test_strings_sharing_words_or_bytes_are_told_apart_whatever_the_chunking():
    # below the sketch's k the distinct count is that of distinct hashes: a collision between
    # any of these would show as one less
    base = ["", "a", "a\x00", "a\x00\x00", "abcdefgh12345678", "12345678abcdefgh", "abcdefgh",
            "abcdefgi", "ключ", "ключ\x00", "x" * 1_000, "x" * 999 + "y", "x" * 1_001]
    values = base + [f"{n:08d}{n:08d}" for n in range(3_000)] + [str(n) + "y" * 700 for n in range(500)]
    expected = len(set(values))
    # repeats in another order: a hash that read past a string's end would tell them apart
    table = pa.table({"s": pa.array(values + values[::-7], pa.string())})
    for chunks in (1, 3):
        found = _profile(table, chunks, exact_distinct_limit=10)
        assert found[("s", "distinct", "")] == expected, chunks


def test_columns_profiled_on_threads_give_the_profile_profiled_in_turn(monkeypatch):
    import monitors.intake.profile as profile_module
    rng = np.random.default_rng(43)
    rows = 2 * profile_module.PARALLEL_ROWS
    table = pa.table({"x": rng.normal(0, 1, rows), "n": rng.integers(0, 50, rows),
                      "s": pa.array(np.array(CATEGORIES)[rng.integers(0, 6, rows)].tolist())})
    threaded = _profile(table, 2)
    monkeypatch.setattr(profile_module, "PROFILE_THREADS", 1)
    assert _profile(table, 2) == threaded
