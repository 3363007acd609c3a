"""The profile shift on a column whose extremes swing on clean data (an income's max)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.profiles import detect_profile_shift

DAYS = pd.date_range("2026-01-01", periods=40, freq="D")


def income_profiles(flipped: tuple[int, ...] = (), largest: dict[int, float] | None = None) -> pd.DataFrame:
    """A lognormal income's scalar profile per day; `flipped` days arrive sign-flipped,
    `largest` days carry one customer with that income (a clean batch's rare big earner)."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(len(DAYS)):
        values = rng.lognormal(10.3, 0.5, 2_000).round(2)
        if largest and i in largest:
            values[0] = largest[i]
        if i in flipped:
            values = -values
        qs = np.quantile(values, [0.01, 0.25, 0.5, 0.75, 0.99])
        rows.append({"count": 2_000.0, "mean": values.mean(), "std": values.std(),
                     "min": values.min(), "max": values.max(),
                     **dict(zip(["p01", "p25", "p50", "p75", "p99"], qs)),
                     "zeros": 0.0, "negatives": float((values < 0).sum())})
    return pd.DataFrame(rows, index=DAYS)


def flagged(profiles: pd.DataFrame, since) -> dict:
    found = detect_profile_shift(profiles, since=since, name="income")
    return {f.at: f.detail for f in found.findings}


def test_a_sign_flipped_batch_in_the_window_does_not_make_a_clean_max_fire():
    clean = income_profiles()
    usual = clean["max"].iloc[:30].median()
    # day 30: a clean batch with a big earner, 2.3 times the usual max, inside twice the
    # largest max the window saw
    big = {30: min(2.3 * usual, 1.9 * clean["max"].iloc[2:30].max())}
    assert big[30] > 2 * usual
    assert flagged(income_profiles(largest=big), DAYS[30]) == {}
    # the same batch 10 days after a sign-flipped one: still not a change of the column
    assert flagged(income_profiles(flipped=(20,), largest=big), DAYS[30]) == {}


def test_breakage_after_a_sign_flipped_batch_is_still_caught():
    after_flip = flagged(income_profiles(flipped=(20, 30)), DAYS[30])
    assert "negative share 100%" in after_flip[DAYS[30]]
    tenfold = income_profiles(flipped=(20,))
    tenfold.loc[DAYS[30], ["mean", "max", "p50", "p99"]] *= 12
    assert "max" in flagged(tenfold, DAYS[30])[DAYS[30]]
