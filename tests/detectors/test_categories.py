import pandas as pd
import pytest

from detectors.categories import detect_new_categories

DAYS = pd.date_range("2026-01-01", periods=30, freq="D")


def frame(new_from: int | None = None, share: float = 0.1) -> pd.DataFrame:
    counts = pd.DataFrame({"branch": 500, "online": 300, "mobile": 200}, index=DAYS, dtype=float)
    if new_from is not None:
        counts["partner_app"] = 0.0
        counts.iloc[new_from:, counts.columns.get_loc("partner_app")] = 1000 * share
    return counts


def test_a_new_category_is_found_on_its_first_day_only():
    found = detect_new_categories(frame(new_from=20))
    assert [f.at for f in found.findings] == [DAYS[20]]
    assert "'partner_app'" in found.findings[0].detail


def test_a_tiny_new_category_is_not_reported():
    assert detect_new_categories(frame(new_from=20, share=0.002)).findings == ()


def test_stable_categories_find_nothing_and_since_limits_the_points():
    assert detect_new_categories(frame()).findings == ()
    assert detect_new_categories(frame(new_from=20), since=DAYS[21]).findings == ()


def test_short_history_is_skipped_and_bad_options_are_named():
    assert detect_new_categories(frame().iloc[:3]).skipped
    assert detect_new_categories(pd.DataFrame()).skipped
    with pytest.raises(ValueError, match="min_share"):
        detect_new_categories(frame(), min_share=2)
    with pytest.raises(ValueError, match="lookback"):
        detect_new_categories(frame(), lookback=0)
