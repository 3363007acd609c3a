"""Breakout detection quality on the Turing Change Point Dataset (TCPD), default options.

Runs `detect_breakouts` with no options on every univariate TCPD series under
`../shared/data/tcpd` and scores it with the benchmark's own F1 and Cover (definitions in
that folder's README), next to the published default methods on the same series.

    python bench/detection_tcpd.py          # from the repository root

Writes bench/results/detection_tcpd.json.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from detectors import detect_breakouts  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tcpd"
RESULTS = ROOT / "bench" / "results" / "detection_tcpd.json"
MARGIN = 5
# The benchmark leaves these out of its averages: the quality-control series are synthetic
# sanity checks, and uk_coal_employ has missing values most methods cannot take.
EXCLUDED = ("uk_coal_employ",)


def excluded(name: str) -> bool:
    return name in EXCLUDED or name.startswith("quality_control")


# --- the benchmark's scores -------------------------------------------------------------


def true_positives(truth: set[int], predicted: set[int], margin: int = MARGIN) -> set[int]:
    """Annotated points matched one-to-one by a prediction within `margin` indices,
    each taking the closest prediction still free."""
    free = set(predicted)
    matched = set()
    for tau in sorted(truth):
        close = sorted((abs(tau - x), x) for x in free if abs(tau - x) <= margin)
        if close:
            matched.add(tau)
            free.remove(close[0][1])
    return matched


def f_measure(annotations: dict[str, list[int]], predictions: list[int],
              margin: int = MARGIN) -> tuple[float, float, float]:
    """(F1, precision, recall): precision against the union of the annotators' points,
    recall averaged over annotators; index 0 counts as a change point in every set."""
    per_annotator = [set(points) | {0} for points in annotations.values()]
    union = set().union(*per_annotator)
    predicted = set(predictions) | {0}
    precision = len(true_positives(union, predicted, margin)) / len(predicted)
    recall = float(np.mean([len(true_positives(t, predicted, margin)) / len(t)
                            for t in per_annotator]))
    if precision + recall == 0:
        return 0.0, precision, recall
    return 2 * precision * recall / (precision + recall), precision, recall


def _partition(points, n: int) -> list[tuple[int, int]]:
    bounds = sorted({p for p in points if 0 < p < n} | {0, n})
    return list(zip(bounds[:-1], bounds[1:]))


def _jaccard(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / (max(a[1], b[1]) - min(a[0], b[0]))


def covering(annotations: dict[str, list[int]], predictions: list[int], n: int) -> float:
    """Segmentation covering: each annotated segment, weighted by its length, scored by its
    best Jaccard overlap with a predicted segment; averaged over annotators."""
    predicted = _partition(predictions, n)
    scores = []
    for points in annotations.values():
        truth = _partition(points, n)
        scores.append(sum((b - a) * max(_jaccard((a, b), p) for p in predicted)
                          for a, b in truth) / n)
    return float(np.mean(scores))


# --- the data ---------------------------------------------------------------------------


def load_series(path: Path) -> pd.Series | None:
    """A TCPD dataset as a Series on a RangeIndex (positions are what annotations count),
    or None when it is not univariate."""
    doc = json.loads(path.read_text())
    if doc["n_dim"] != 1:
        return None
    raw = doc["series"][0]["raw"]
    values = np.array([np.nan if v is None else v for v in raw], dtype=float)
    return pd.Series(values, name=doc["name"])


def positions(series: pd.Series, labels) -> list[int]:
    return sorted({int(series.index.get_loc(label)) for label in labels})


# --- speed against the yardstick ------------------------------------------------------------


def _best_of(repeats: int, call) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def speed(n: int = 10_000, repeats: int = 3) -> dict:
    """detect_breakouts (period found, season removed, search) on an n-point hourly series
    against one robust statsmodels STL fit of the same series, timed in the same run."""
    from statsmodels.tsa.seasonal import STL

    rng = np.random.default_rng(0)
    t = np.arange(n)
    values = 500 + 0.02 * t + 60 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 10, n)
    values[int(0.4 * n):] += 120
    values[int(0.7 * n):] -= 200
    series = pd.Series(values, index=pd.date_range("2025-01-01", periods=n, freq="h"))
    walk = pd.Series(1000 + np.cumsum(rng.normal(0, 1, n)))  # many candidates to prune

    stl = _best_of(repeats, lambda: STL(values, period=24, robust=True).fit())
    seasonal = _best_of(repeats, lambda: detect_breakouts(series))
    wandering = _best_of(repeats, lambda: detect_breakouts(walk))
    return {"n": n, "stl_robust_seconds": stl,
            "breakouts_seconds": seasonal, "ratio": seasonal / stl,
            "random_walk_seconds": wandering, "random_walk_ratio": wandering / stl,
            "found": positions(series, [f.at for f in detect_breakouts(series).findings]),
            "planted": [int(0.4 * n), int(0.7 * n)]}


# --- the run ------------------------------------------------------------------------------


def run() -> dict:
    annotations = json.loads((DATA / "annotations.json").read_text())
    published = json.loads((DATA / "published_scores.json").read_text())
    methods = published["methods"]

    rows = []
    for path in sorted(DATA.glob("datasets/*/*.json")):
        series = load_series(path)
        if series is None:
            continue
        name = series.name
        started = time.perf_counter()
        detection = detect_breakouts(series)
        seconds = time.perf_counter() - started
        found = positions(series, [f.at for f in detection.findings])
        f1, precision, recall = f_measure(annotations[name], found)
        rows.append({
            "series": name, "n": len(series), "found": found,
            "annotated": sorted(set().union(*map(set, annotations[name].values()))),
            "f1": f1, "precision": precision, "recall": recall,
            "cover": covering(annotations[name], found, len(series)),
            "seconds": seconds, "skipped": detection.skipped,
            "in_average": not excluded(name),
        })

    scored = [r for r in rows if r["in_average"]]
    names = [r["series"] for r in scored]

    def published_mean(kind: str, method: str) -> float:
        # the benchmark scores a failed run as 0
        return float(np.mean([published[kind][s][method] or 0.0 for s in names]))

    summary = {
        "series": len(scored),
        "f1": float(np.mean([r["f1"] for r in scored])),
        "cover": float(np.mean([r["cover"] for r in scored])),
        "seconds_per_series": float(np.mean([r["seconds"] for r in rows])),
        "published_default": {m: {"f1": published_mean("default_f1", m),
                                  "cover": published_mean("default_cover", m)}
                              for m in methods},
    }
    return {"rows": rows, "summary": summary, "speed": speed()}


def print_table(result: dict) -> None:
    rows, summary = result["rows"], result["summary"]
    print(f"{'series':22} {'n':>5} {'F1':>6} {'Cover':>6} {'sec':>7}  found / annotated")
    for r in rows:
        mark = " " if r["in_average"] else "*"
        print(f"{r['series']:21}{mark} {r['n']:5d} {r['f1']:6.3f} {r['cover']:6.3f} "
              f"{r['seconds']:7.3f}  {r['found']} / {r['annotated']}")
    print(f"* left out of averages. Average over {summary['series']} series:")
    table = [("detect_breakouts (ours)", summary["f1"], summary["cover"])]
    table += sorted(((m, s["f1"], s["cover"]) for m, s in summary["published_default"].items()),
                    key=lambda t: -t[1])
    print(f"{'method':24} {'F1':>6} {'Cover':>6}")
    for method, f1, cover in table:
        print(f"{method:24} {f1:6.3f} {cover:6.3f}")
    print(f"seconds per series: {summary['seconds_per_series']:.4f}")
    sp = result["speed"]
    print(f"speed, {sp['n']} points: one robust STL fit {sp['stl_robust_seconds']:.3f} s; "
          f"detect_breakouts {sp['breakouts_seconds']:.3f} s ({sp['ratio']:.2f}x, found "
          f"{sp['found']}, planted {sp['planted']}); on a random walk "
          f"{sp['random_walk_seconds']:.3f} s ({sp['random_walk_ratio']:.2f}x)")


if __name__ == "__main__":
    outcome = run()
    print_table(outcome)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(outcome, indent=1, default=str))
    print(f"written {RESULTS.relative_to(ROOT)}")
