"""Anomaly detection quality on the Numenta Anomaly Benchmark (NAB), default options.

Runs `detect_anomalies` with no options on every NAB series under `../shared/data/nab`
(whole series, no per-file settings) and scores it as NAB does (definitions in that
folder's README): per profile the NAB score, per category and in total, normalised so that
detecting nothing scores 0 and a perfect detector 100; window precision, recall and F1;
seconds per series.

    python bench/detection_nab.py          # from the repository root

Writes bench/results/detection_nab.json.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from detectors import detect_anomalies  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "nab"
RESULTS = ROOT / "bench" / "results" / "detection_nab.json"
PROFILES = {  # (tp, fn, fp) weights, as NAB's config/profiles.json
    "standard": (1.0, 1.0, 0.11),
    "reward_low_FP_rate": (1.0, 1.0, 0.22),
    "reward_low_FN_rate": (1.0, 2.0, 0.11),
}
PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 5000  # the probation is 15% of the file, at most 15% of 5000 rows


# --- NAB's score ------------------------------------------------------------------------

def scaled_sigmoid(position: float) -> float:
    """NAB's weighting: +0.987 at a window's left edge (position -1), 0 at its right edge
    (0), falling towards -1 past it; -1 beyond three window widths."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def file_score(n_rows: int, windows: list[tuple[int, int]], detected: set[int],
               weights: tuple[float, float, float]) -> dict:
    """One file's raw NAB score for the detections at row positions `detected`.

    Rows in the probation period are ignored, detections and windows alike (a window
    counts only if some of its rows lie after the probation, as in NAB's sweeper). Within
    a window the best, i.e. earliest, detection counts; a window without one costs the FN
    weight; every detection outside windows costs the FP weight scaled by how far it is
    past the previous window's right edge.
    """
    tp_weight, fn_weight, fp_weight = weights
    probation = min(math.floor(PROBATION_FRACTION * n_rows),
                    PROBATION_FRACTION * PROBATION_CAP_ROWS)
    max_tp = scaled_sigmoid(-1.0)
    window_of = {}
    for number, (left, right) in enumerate(windows):
        for i in range(left, right + 1):
            window_of[i] = number
    counted = {window_of[i] for i in range(n_rows) if i >= probation and i in window_of}
    best = {number: -fn_weight for number in counted}
    fp_total = 0.0
    false_positives = 0
    for i in sorted(detected):
        if i < probation:
            continue
        if i in window_of:
            left, right = windows[window_of[i]]
            width = right - left + 1
            score = scaled_sigmoid(-(right - i + 1) / width) * tp_weight / max_tp
            best[window_of[i]] = max(best[window_of[i]], score)
        else:
            before = [(l, r) for l, r in windows if r < i]
            if before:
                left, right = before[-1]
                position = abs(right - i) / float(right - left)
            else:
                position = 3.0
            fp_total += scaled_sigmoid(position) * fp_weight
            false_positives += 1
    found = sum(1 for number in counted if best[number] > -fn_weight)
    return {"score": sum(best.values()) + fp_total, "windows": len(counted),
            "found": found, "false_positives": false_positives,
            "null": -fn_weight * len(counted), "perfect": tp_weight * len(counted)}


def normalised(parts: list[dict]) -> float | None:
    score = sum(p["score"] for p in parts)
    null = sum(p["null"] for p in parts)
    perfect = sum(p["perfect"] for p in parts)
    if perfect == null:
        return None
    return 100.0 * (score - null) / (perfect - null)


def window_counts(n_rows: int, windows: list[tuple[int, int]], detected: set[int]) -> dict:
    """Window-level counts over the whole file: a window is found when any detection falls
    in it; a detection outside every window is a false positive."""
    inside = set()
    fp = 0
    for i in detected:
        hit = [w for w, (l, r) in enumerate(windows) if l <= i <= r]
        if hit:
            inside.update(hit)
        else:
            fp += 1
    return {"tp": len(inside), "fn": len(windows) - len(inside), "fp": fp}


def prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = (2 * precision * recall / (precision + recall)
          if precision and recall else 0.0 if precision is not None and recall is not None
          else None)
    return {"precision": precision, "recall": recall, "f1": f1}


# --- the run ----------------------------------------------------------------------------

def load(name: str) -> pd.Series:
    frame = pd.read_csv(DATA / "data" / name)
    index = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"]))
    return pd.Series(frame["value"].to_numpy(dtype=float), index=index, name=name)


def window_rows(index: pd.DatetimeIndex, limits: list[list[str]]) -> list[tuple[int, int]]:
    rows = []
    for start, end in limits:
        left = int(index.searchsorted(pd.Timestamp(start), side="left"))
        right = int(index.searchsorted(pd.Timestamp(end), side="right")) - 1
        rows.append((left, right))
    return rows


def run(detect=detect_anomalies) -> dict:
    windows = json.loads((DATA / "labels" / "combined_windows.json").read_text())
    files = []
    for name in sorted(windows):
        series = load(name)
        started = time.perf_counter()
        detection = detect(series)
        seconds = time.perf_counter() - started
        position = {at: i for i, at in enumerate(series.index)}
        detected = {position[f.at] for f in detection.findings}
        rows = window_rows(series.index, windows[name])
        files.append({
            "file": name, "category": name.split("/")[0], "points": len(series),
            "seconds": seconds, "detections": len(detected), "skipped": detection.skipped,
            "profiles": {p: file_score(len(series), rows, detected, w)
                         for p, w in PROFILES.items()},
            "window": window_counts(len(series), rows, detected),
        })
    categories = sorted({f["category"] for f in files})
    summary = {"total": _summarise(files)}
    for category in categories:
        summary[category] = _summarise([f for f in files if f["category"] == category])
    return {"detector": "detect_anomalies, default options, whole series",
            "scoring": "NAB v1.1 sweeper rules: probation min(floor(0.15 n), 750) rows; "
                       "earliest detection per window on the scaled sigmoid; FP weighted "
                       "by distance past the previous window; normalised 100 (S - S_null)"
                       " / (S_perfect - S_null). Detections are binary, so no threshold "
                       "is optimised.",
            "summary": summary, "files": files}


def _summarise(files: list[dict]) -> dict:
    tp = sum(f["window"]["tp"] for f in files)
    fp = sum(f["window"]["fp"] for f in files)
    fn = sum(f["window"]["fn"] for f in files)
    out = {p: normalised([f["profiles"][p] for f in files]) for p in PROFILES}
    out["raw"] = {p: {k: round(sum(f["profiles"][p][k] for f in files), 4)
                      for k in ("score", "null", "perfect")} for p in PROFILES}
    out.update(prf(tp, fp, fn))
    out.update({"files": len(files), "windows": tp + fn, "windows_found": tp,
                "false_positives": fp,
                "seconds_per_series": sum(f["seconds"] for f in files) / len(files)})
    return out


def _fmt(value, digits=1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(result: dict) -> None:
    head = (f"{'category':24} {'standard':>8} {'low_FP':>7} {'low_FN':>7} {'prec':>5} "
            f"{'recall':>6} {'F1':>5} {'win':>4} {'FP':>5} {'s/series':>8}")
    print(head)
    print("-" * len(head))
    for category, s in result["summary"].items():
        print(f"{category:24} {_fmt(s['standard']):>8} {_fmt(s['reward_low_FP_rate']):>7} "
              f"{_fmt(s['reward_low_FN_rate']):>7} {_fmt(s['precision'], 2):>5} "
              f"{_fmt(s['recall'], 2):>6} {_fmt(s['f1'], 2):>5} {s['windows']:>4} "
              f"{s['false_positives']:>5} {s['seconds_per_series']:>8.3f}")


def main() -> None:
    result = run()
    print_table(result)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
