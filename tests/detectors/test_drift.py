"""Drift from stored profiles: it must agree with what the raw data would have said, and
must not flag differences too small to matter however many rows back them."""
import numpy as np
import pandas as pd
import pytest

from detectors import (
    categorical_drift,
    categorical_profile,
    detect_drift,
    numeric_drift,
    numeric_profile,
)


def raw_psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """The textbook PSI on raw values: bins at the reference's deciles."""
    edges = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])
    e = (np.bincount(np.searchsorted(edges, reference, side="right"), minlength=bins)
         / reference.size)
    a = np.bincount(np.searchsorted(edges, current, side="right"), minlength=bins) / current.size
    e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
    return float(np.sum((a - e) * np.log(a / e)))


def raw_ks(reference: np.ndarray, current: np.ndarray) -> float:
    grid = np.sort(np.concatenate([reference, current]))
    f_ref = np.searchsorted(np.sort(reference), grid, side="right") / reference.size
    f_cur = np.searchsorted(np.sort(current), grid, side="right") / current.size
    return float(np.abs(f_ref - f_cur).max())


def test_shifted_normal_flags_with_psi_close_to_the_raw_data_psi():
    rng = np.random.default_rng(11)
    reference = rng.normal(100.0, 15.0, 50_000)
    current = rng.normal(108.0, 15.0, 50_000)  # about half a standard deviation
    res = numeric_drift(numeric_profile(reference), numeric_profile(current))
    assert res.drifted
    assert res.psi == pytest.approx(raw_psi(reference, current), rel=0.1)
    assert res.ks == pytest.approx(raw_ks(reference, current), abs=0.02)
    assert res.median_reference == pytest.approx(100, abs=0.5)
    assert res.median_current == pytest.approx(108, abs=0.5)


@pytest.mark.parametrize("make", [
    lambda rng, n: (rng.lognormal(0, 1, n), rng.lognormal(0.3, 1, n)),
    lambda rng, n: (rng.exponential(1.0, n), rng.exponential(1.4, n)),
    lambda rng, n: (rng.normal(0, 1, n), rng.normal(0, 1.5, n)),
    lambda rng, n: (rng.normal(0, 1, n), np.concatenate([rng.normal(0, 1, int(n * 0.85)),
                                                         rng.normal(3, 0.5, n - int(n * 0.85))])),
], ids=["lognormal", "exponential", "wider", "new-mode"])
def test_sketch_psi_tracks_raw_psi_on_other_shapes(make):
    reference, current = make(np.random.default_rng(5), 100_000)
    res = numeric_drift(numeric_profile(reference), numeric_profile(current))
    assert res.psi == pytest.approx(raw_psi(reference, current), rel=0.15)


def test_a_million_rows_with_a_trivial_shift_do_not_flag():
    rng = np.random.default_rng(2)
    reference = rng.normal(0.0, 1.0, 1_000_000)
    current = rng.normal(0.01, 1.0, 1_000_000)
    res = numeric_drift(numeric_profile(reference), numeric_profile(current))
    # statistically "significant" at this size, and still nothing a model would notice
    assert res.ks_pvalue < 0.01
    assert res.psi < 0.01
    assert not res.drifted


def test_a_small_batch_needs_significance_as_well_as_size():
    # two 40-row samples of one distribution: their sketches differ by chance alone, enough
    # for PSI to pass 0.2, and the significance gate keeps that quiet
    rng = np.random.default_rng(4)
    reference = numeric_profile(rng.normal(0, 1, 40))
    current = numeric_profile(rng.normal(0, 1, 40))
    res = numeric_drift(reference, current)
    assert res.psi >= 0.2
    assert not res.drifted and res.psi_pvalue > 0.01
    # under min_count a batch is not judged at all
    assert numeric_drift(reference, numeric_profile(rng.normal(0, 1, 10))).skipped


def test_categories_a_big_swing_flags_a_trivial_one_does_not():
    ref = {"FR": 500_000, "DE": 300_000, "ES": 200_000}
    assert not categorical_drift(ref, {"FR": 501_500, "DE": 299_000, "ES": 199_500}).drifted
    res = categorical_drift(ref, {"FR": 200_000, "DE": 300_000, "ES": 500_000})
    assert res.drifted and res.chi2_pvalue < 1e-10
    assert res.js > 0.2
    assert "'FR' 50.0% -> 20.0%" in res.detail or "'ES' 20.0% -> 50.0%" in res.detail


def test_a_new_category_counts_when_the_reference_was_complete():
    ref = {"a": 5000, "b": 5000, "other": 0}
    res = categorical_drift(ref, {"a": 4000, "b": 4000, "c": 2000})
    assert res.drifted
    # but a category merely outside the reference's top-k list is not "new"
    ref_topk = {"a": 5000, "b": 4000, "other": 1000}
    assert not categorical_drift(ref_topk, {"a": 5000, "b": 4000, "c": 1000}).drifted


def test_categorical_profile_keeps_top_k_and_other():
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5 + [None] * 7
    assert categorical_profile(values, top_k=2) == {"a": 50.0, "b": 30.0, "other": 20.0}


def daily_profiles(shift_day: int | None = None, days: int = 40, n: int = 5_000):
    rng = np.random.default_rng(8)
    index = pd.date_range("2024-01-01", periods=days, freq="D")
    rows = {}
    for i, day in enumerate(index):
        mean = 0.41 + (0.17 if shift_day is not None and i == shift_day else 0.0)
        rows[day] = numeric_profile(np.clip(rng.normal(mean, 0.1, n), 0, 1))
    return pd.DataFrame.from_dict(rows, orient="index")


def test_detect_drift_over_stored_profiles_finds_the_drifted_batch():
    profiles = daily_profiles(shift_day=30)
    det = detect_drift(profiles, reference="trailing", window=7, name="score")
    assert [f.at for f in det.findings] == [pd.Timestamp("2024-01-31")]
    (f,) = det.findings
    assert f.upper == 0.2 and f.value >= 0.2
    assert f.before == pytest.approx(0.41, abs=0.01) and f.after == pytest.approx(0.58, abs=0.01)
    assert f.detail.startswith("[drift] score: PSI ")
    assert "vs trailing 7 batches (limit 0.20); median 0.41" in f.detail
    assert det.band["value"].notna().all()


def test_detect_drift_clean_history_is_quiet_and_since_limits_the_test():
    assert not detect_drift(daily_profiles()).fired
    det = detect_drift(daily_profiles(shift_day=30), since="2024-02-01")
    assert not det.fired and det.band.index.min() == pd.Timestamp("2024-02-01")


def test_detect_drift_against_the_previous_batch_from_a_mapping():
    profiles = daily_profiles(shift_day=30).to_dict(orient="index")
    det = detect_drift(profiles, reference="previous")
    # the drifted day, and the day after it (compared with the drifted day)
    assert [f.at.day for f in det.findings] == [31, 1]
    assert "vs the previous batch" in det.findings[0].detail


def test_detect_drift_on_category_profiles_with_changing_top_k():
    rng = np.random.default_rng(9)
    cats = list("abcdefgh")
    usual = [0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05]
    changed = [0.1, 0.2, 0.15, 0.3, 0.1, 0.05, 0.05, 0.05]
    rows = {}
    for i, day in enumerate(pd.date_range("2024-01-01", periods=20, freq="D")):
        rows[day] = categorical_profile(rng.choice(cats, 4000, p=changed if i == 15 else usual),
                                        top_k=4)
    profiles = pd.DataFrame.from_dict(rows, orient="index")  # NaN where not in a day's top-4
    det = detect_drift(profiles, name="country")
    assert [f.at.day for f in det.findings] == [16]
    assert det.findings[0].detail.startswith("[drift] country: JS ")


def test_detect_drift_short_or_empty_history_is_skipped():
    assert detect_drift({}).skipped == "no profiles"
    one = daily_profiles(days=1)
    assert "history too short" in detect_drift(one).skipped
    # an all-null batch stored as an empty profile is a gap, not an error
    gap = daily_profiles(days=5)
    gap.iloc[2] = np.nan
    det = detect_drift(gap)
    assert pd.Timestamp("2024-01-03") not in det.band.index


@pytest.mark.parametrize("call, option", [
    (lambda: numeric_drift({"p50": 1.0}, numeric_profile([1.0, 2.0])), "lacks"),
    (lambda: numeric_drift(numeric_profile(range(100)), numeric_profile(range(100)),
                           max_psi=0), "max_psi"),
    (lambda: numeric_drift(numeric_profile(range(100)), numeric_profile(range(100)),
                           interpolation="spline"), "interpolation"),
    (lambda: numeric_drift(numeric_profile(range(100)), numeric_profile(range(100)),
                           bins=1), "bins"),
    (lambda: numeric_drift({**numeric_profile(range(100)), "p25": 99.0},
                           numeric_profile(range(100))), "decrease"),
    (lambda: categorical_drift({"a": -1}, {"a": 1}), "count"),
    (lambda: categorical_drift({"a": 1}, {"a": 1}, max_js=2), "max_js"),
    (lambda: categorical_drift({"a": 1}, {"a": 1}, alpha=0), "alpha"),
    (lambda: detect_drift({}, reference="baseline"), "reference"),
    (lambda: detect_drift({}, reference="previous", window=3), "window"),
    (lambda: detect_drift({}, window=3, min_periods=5), "min_periods"),
    (lambda: detect_drift({}, kind="text"), "kind"),
    (lambda: detect_drift([1, 2, 3]), "profiles"),
])
def test_bad_options_raise_value_error_naming_them(call, option):
    with pytest.raises(ValueError, match=option):
        call()


def test_an_optional_ks_limit_catches_what_psi_lets_pass():
    rng = np.random.default_rng(12)
    reference = numeric_profile(rng.normal(0, 1, 20_000))
    current = numeric_profile(rng.normal(0.3, 1, 20_000))
    assert not numeric_drift(reference, current).drifted  # PSI about 0.09
    res = numeric_drift(reference, current, max_ks=0.1)
    assert res.drifted and res.psi < 0.2 and res.ks >= 0.1
    profiles = pd.DataFrame([reference] * 5 + [current],
                            index=pd.date_range("2024-01-01", periods=6, freq="D"))
    (f,) = detect_drift(profiles, max_ks=0.1).findings
    assert f.detail.startswith("[drift] value: KS 0.1") and f.upper == 0.1


def _backfill_windows(frame: pd.DataFrame, first_tested: int):
    """What a backfill hands the detector for each partition: the window up to it with a
    trailing reference, and a pinned reference (the first 28 partitions) plus the partition."""
    for at in frame.index[first_tested:]:
        yield frame[frame.index <= at], {"since": at}
        yield frame.loc[[*frame.index[:28], at]], {"since": at, "window": 28}


def test_drift_verdicts_are_the_same_however_the_profiles_are_read():
    """The fast path (float rows converted only where read, parsed profiles and recurring
    references remembered across calls) gives the findings and bands of the plain path
    (every row converted from objects, nothing remembered)."""
    rng = np.random.default_rng(17)
    days = pd.date_range("2024-03-01", periods=40, freq="D")
    numeric, categorical = {}, {}
    for i, day in enumerate(days):
        if i == 12:
            continue  # a day without a batch
        n = int(rng.integers(25, 2000))
        x = rng.lognormal(0.0, 1.0, n) * (1.7 if 33 <= i < 37 else 1.0)
        if i % 8 == 0:
            x[: n // 3] = 0.0  # zero-inflated days: point masses in the sketch
        numeric[day] = numeric_profile(x)
        p = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])
        categorical[day] = categorical_profile(
            rng.choice(list("abcdefgh"), n, p=p[::-1] if 35 <= i < 38 else p), top_k=4)
    numeric = pd.DataFrame.from_dict(numeric, orient="index")
    numeric.iloc[20] = np.nan  # a failed profile: a gap
    categorical = pd.DataFrame.from_dict(categorical, orient="index")
    fired = 0
    for frame in (numeric, categorical):
        for window, options in _backfill_windows(frame, 32):
            for extra in ({}, {"interpolation": "linear", "max_ks": 0.15}):
                if frame is categorical and extra:
                    continue
                fast = detect_drift(window, name="x", **options, **extra)
                plain = detect_drift(window.astype(object), name="x", **options, **extra)
                assert fast.findings == plain.findings and fast.skipped == plain.skipped
                pd.testing.assert_frame_equal(fast.band, plain.band, check_exact=True)
                fired += len(fast.findings)
    assert fired > 0  # the window holds drifts, so the comparison covers findings too


def test_the_ks_distance_and_merged_references_are_the_numbers_of_a_search_at_every_knot():
    """The backfill's shortcuts (knots located from the grid's side, the KS gap read at each
    sketch's knots apart, a merged reference's CDF at its own knots remembered) give the very
    numbers of searching every point of the union of knots, atoms and linear sketches too."""
    from detectors.drift import _cdf, _compare_numeric, _mix, _sketch

    rng = np.random.default_rng(5)
    for trial in range(40):
        profiles = []
        for _ in range(9):
            x = rng.normal(rng.uniform(-2, 2), rng.uniform(0.5, 2), int(rng.integers(50, 3000)))
            if trial % 3 == 0:
                x[: x.size // 3] = 0.0  # point masses: repeated knots
            profiles.append(numeric_profile(np.round(x, 1) if trial % 4 == 1 else x))
        interpolation = "linear" if trial % 5 == 0 else "pchip"
        sketches = [_sketch(p, "profile", interpolation) for p in profiles]
        reference, current = _mix(sketches[: 1 + trial % 8]), sketches[8]
        union = np.unique(np.concatenate([reference.xs, current.xs]))
        for side in (False, True):
            for sketch in (reference, current):
                assert np.array_equal(_cdf(sketch, union, left=side, x_sorted=True),
                                      _cdf(sketch, union, left=side))
        searched = max(np.abs(_cdf(reference, union, left=side) - _cdf(current, union, left=side)).max()
                       for side in (False, True))
        found = _compare_numeric(reference, current, max_psi=0.2, max_ks=None, alpha=0.01,
                                 bins=10, min_count=30)
        assert found.ks == searched
