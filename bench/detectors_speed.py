"""Speed of detect_anomalies and detect_breakouts, against one robust STL fit.

The yardstick is what a careful person would run by hand on the same series:
`statsmodels.tsa.seasonal.STL(values, period=p, robust=True).fit()` (p = 24 for hourly
series, 7 for daily), timed in the same run on the same machine, so the ratios hold
however busy the machine is. The detectors run with their defaults, including finding the
period themselves, as a monitor calls them.

Cases:
- one hourly series of 1,000 and of 10,000 points (timed several times, median kept);
- 1,000 daily series of two years (730 points), each through both detectors, against
  one STL fit of each.

Targets (issue 3): anomalies on 10k points <= 0.6x the STL fit; breakouts <= 1.3x; a
two-year daily series through both <= 1.2x.

    python bench/detectors_speed.py                 # from the repository root
    python bench/detectors_speed.py --series 200    # a quicker run

Writes bench/results/detectors_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels
from statsmodels.tsa.seasonal import STL

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import detectors  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "detectors_speed.json"
TARGETS = {"anomalies_10k": 0.6, "breakouts_10k": 1.3, "daily_2y_both": 1.2}


def make_series(n: int, *, freq: str, seed: int) -> pd.Series:
    """A metric the way monitors see them: a season, slow growth, noise, a few spikes and
    one level shift, so the detectors have real work rather than an empty answer."""
    rng = np.random.default_rng(seed)
    period = 24 if freq == "h" else 7
    t = np.arange(n)
    season = np.sin(2 * np.pi * t / period) + 0.3 * np.sin(4 * np.pi * t / period)
    level = 100 + 0.01 * t
    values = level + 8 * season + rng.normal(0, 2, n)
    shift_at = int(n * rng.uniform(0.55, 0.8))
    values[shift_at:] += 15
    spikes = rng.choice(n, size=max(2, n // 250), replace=False)
    values[spikes] += rng.choice([-1, 1], spikes.size) * rng.uniform(15, 30, spikes.size)
    index = pd.date_range("2022-01-01", periods=n, freq=freq)
    return pd.Series(values, index=index, name="metric")


def stl_fit(series: pd.Series, period: int) -> None:
    STL(series.to_numpy(), period=period, robust=True).fit()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def single_series(n: int, repeats: int, names: list[str]) -> dict:
    """One hourly series of n points; the three contenders interleaved on every repeat so
    a burst of load from elsewhere hits them alike."""
    series = make_series(n, freq="h", seed=n)
    calls = {"stl": lambda: stl_fit(series, 24)}
    for name in names:
        fn = getattr(detectors, name)
        calls[name] = lambda fn=fn: fn(series)
    for call in calls.values():  # warm-up: imports, caches, first allocations
        call()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            times[key].append(timed(call))
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"points": n, "repeats": repeats,
           "seconds": {k: round(v, 5) for k, v in med.items()},
           "all_seconds": {k: [round(x, 5) for x in v] for k, v in times.items()}}
    out["ratio_to_stl"] = {k: round(med[k] / med["stl"], 3) for k in names}
    return out


def many_daily(count: int, names: list[str]) -> dict:
    series = [make_series(730, freq="D", seed=10_000 + i) for i in range(count)]
    totals = {"stl": 0.0, **{k: 0.0 for k in names}}
    stl_fit(series[0], 7)
    for name in names:
        getattr(detectors, name)(series[0])
    found = {k: 0 for k in names}
    for s in series:
        totals["stl"] += timed(lambda: stl_fit(s, 7))
        for name in names:
            fn = getattr(detectors, name)
            start = time.perf_counter()
            det = fn(s)
            totals[name] += time.perf_counter() - start
            found[name] += len(det.findings)
    both = sum(totals[k] for k in names)
    return {
        "series": count, "points": 730,
        "total_seconds": {k: round(v, 3) for k, v in totals.items()} | {"both": round(both, 3)},
        "ms_per_series": {k: round(1000 * v / count, 3) for k, v in totals.items()}
                         | {"both": round(1000 * both / count, 3)},
        "ratio_to_stl": {k: round(totals[k] / totals["stl"], 3) for k in names}
                        | {"both": round(both / totals["stl"], 3)},
        "findings_per_series": {k: round(found[k] / count, 2) for k in names},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000,
                        help="how many two-year daily series (default 1000)")
    parser.add_argument("--repeats", type=int, default=7,
                        help="repeats of the single-series timings (default 7; 10k uses half)")
    args = parser.parse_args(argv)

    names = [n for n in ("detect_anomalies", "detect_breakouts") if hasattr(detectors, n)]
    missing = sorted({"detect_anomalies", "detect_breakouts"} - set(names))
    if missing:
        print(f"not in detectors yet, not timed: {', '.join(missing)}")
    if not names:
        return 2

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = {
        "when": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "numpy": np.__version__,
                    "pandas": pd.__version__, "statsmodels": statsmodels.__version__,
                    "cpus": os.cpu_count(), "load_average_at_start": load},
        "yardstick": "statsmodels STL(values, period=24 hourly / 7 daily, robust=True).fit()",
        "missing": missing,
        "cases": {},
    }
    for n, repeats in ((1_000, args.repeats), (10_000, max(3, args.repeats // 2))):
        case = single_series(n, repeats, names)
        results["cases"][f"hourly_{n // 1000}k"] = case
        line = ", ".join(f"{k} {1000 * case['seconds'][k]:.1f} ms ({case['ratio_to_stl'][k]:.2f}x)"
                         for k in names)
        print(f"{n:>6,} hourly points: STL {1000 * case['seconds']['stl']:.1f} ms; {line}")
    daily = many_daily(args.series, names)
    results["cases"]["daily_2y"] = daily
    print(f"{args.series:,} daily series of 730 points: STL {daily['total_seconds']['stl']:.1f} s, "
          + ", ".join(f"{k} {daily['total_seconds'][k]:.1f} s" for k in names)
          + f"; both {daily['total_seconds']['both']:.1f} s "
          f"({daily['ratio_to_stl']['both']:.2f}x STL)")

    ten = results["cases"]["hourly_10k"]["ratio_to_stl"]
    verdicts = {}
    if "detect_anomalies" in ten:
        verdicts["anomalies_10k"] = ten["detect_anomalies"]
    if "detect_breakouts" in ten:
        verdicts["breakouts_10k"] = ten["detect_breakouts"]
    if not missing:
        verdicts["daily_2y_both"] = daily["ratio_to_stl"]["both"]
    results["targets"] = {
        k: {"ratio": v, "target": TARGETS[k], "met": v <= TARGETS[k]} for k, v in verdicts.items()}
    print("targets:")
    for k, v in results["targets"].items():
        print(f"  {k:<15} {v['ratio']:.2f}x  (target <= {v['target']}x)  "
              f"{'met' if v['met'] else 'NOT MET'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
