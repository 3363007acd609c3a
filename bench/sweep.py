"""A small, stated search over the default options of `detect_anomalies` (scored on NAB)
and `detect_breakouts` (scored on TCPD), in-sample: which setting the whole development set
would pick, and where the current defaults rank.

The search space is SPACE below: a handful of values per option, every combination. Each
setting is run once over every series and its detections are cached (one JSON file per
detector in the temp dir, keyed by the detectors' source, so editing a detector starts a
fresh cache); `bench/detection.py --cv` re-scores the same cache out of fold, so choosing
defaults never reruns a detector.

    python bench/sweep.py          # from the repository root

Writes bench/results/sweep.json. Two worker processes at most (the machine is shared).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import detection_nab  # noqa: E402  (bench scripts import each other as siblings)
import detection_tcpd  # noqa: E402

from detectors import anomalies, breakouts, detect_anomalies, detect_breakouts  # noqa: E402
from detectors.registry import AnomaliesOptions, BreakoutsOptions  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sweep.json"
PROCESSES = 2

# The options searched and their values; every other option keeps its default. The current
# default of each option is among its values, so the defaults are one of the settings. A
# name in capitals is a constant of the detector's module rather than an option (a rule
# measured before it becomes one): it is set in the worker for that setting only.
SPACE = {
    # issue 12: min_change, sustained and EPISODE_LENGTH_FRACTION were settled by the
    # earlier sweep (0, True, 0.003: chosen in every fold) and are held there; the habit
    # rule (RECURRENCE) is what is measured, with the budget it lets rise. alpha stays at
    # 0.05: 0.1 scores higher on NAB but alerts on clean series (tests/detectors) and
    # leaves Twitter's reference answer (139 points where it finds 131)
    "anomalies": {
        "max_anoms": [0.002, 0.005, 0.01, 0.02],
        "alpha": [0.05],
        "RECURRENCE": [0, 3, 5],
        "RECURRENCE_RATIO": [0.9, 1.0],
        # issue 12, fewer false alarms (added before the figures; the first value is the
        # current behaviour): an episode scored once over a wider gap (1% of the points),
        # persistence (a lone spike must clear 1.5x the critical z; a level change need
        # not), and an alert budget (one alert per 5% of the series)
        "EPISODE_LENGTH_FRACTION": [0.003, 0.01],
        "SPIKE_MARGIN": [1.0, 1.5],
        "ALERT_BUDGET_FRACTION": [0.0, 0.05],
        # added after the first out-of-fold figures (a widening): persistence by count, an
        # episode needs two anomalous points (a lone outlier waits for a second)
        "PERSISTENCE": [1, 2],
    },
    "breakouts": {
        "penalty": [1.0, 1.5, 2.0, 3.0, 4.0],
        "min_change": [0.0, 0.05, 0.1, 0.2],
        "min_size": [None, 5, 10, 24],
        # issue 12: a cost that also sees a change of variance (each regime its own)
        "COST": ["linear", "gaussian"],
    },
}
OPTIONS_MODEL = {"anomalies": AnomaliesOptions, "breakouts": BreakoutsOptions}
MODULE = {"anomalies": anomalies, "breakouts": breakouts}


def settings(kind: str) -> list[dict]:
    space = SPACE[kind]
    return [dict(zip(space, values)) for values in itertools.product(*space.values())]


def defaults(kind: str) -> dict:
    """The current defaults of the searched options, read from the registry's options
    model (which the contract test holds equal to the function's signature)."""
    fields = OPTIONS_MODEL[kind].model_fields
    return {name: getattr(MODULE[kind], name) if name.isupper() else fields[name].default
            for name in SPACE[kind]}


def key(setting: dict) -> str:
    return json.dumps(setting, sort_keys=True)


# --- running the detectors (cached) ---------------------------------------------------------

_SERIES: dict[str, dict] = {}  # per process: the series, loaded once


def _series(kind: str) -> dict:
    if kind not in _SERIES:
        if kind == "anomalies":
            names = json.loads((detection_nab.DATA / "labels" / "combined_windows.json")
                               .read_text())
            _SERIES[kind] = {name: detection_nab.load(name) for name in sorted(names)}
        else:
            loaded = (detection_tcpd.load_series(p)
                      for p in sorted(detection_tcpd.DATA.glob("datasets/*/*.json")))
            _SERIES[kind] = {s.name: s for s in loaded if s is not None}
    return _SERIES[kind]


def _run_group(task: tuple[str, list[dict]]) -> list[tuple[str, dict[str, list[int]]]]:
    """Settings that differ only in module constants, over every series: the row
    positions of their findings per series. The series is the outer loop, so the
    anomalies' decomposition and tests (which no searched constant changes) run once per
    series and option set, and only the grouping and filtering of episodes per setting."""
    kind, group = task
    detect = detect_anomalies if kind == "anomalies" else detect_breakouts
    out: dict[str, dict[str, list[int]]] = {key(s): {} for s in group}
    fit = anomalies._fit
    last: dict = {}

    def remembered(values, present, tested, *options):
        memo = (hashlib.sha1(values.to_numpy().tobytes()).hexdigest(), tested.tobytes(),
                options)
        if last.get("key") != memo:
            last.update(key=memo, fit=fit(values, present, tested, *options))
        return last["fit"]

    anomalies._fit = remembered
    try:
        for name, series in _series(kind).items():
            for setting in group:
                options = {n: v for n, v in setting.items() if not n.isupper()}
                constants = {n: v for n, v in setting.items() if n.isupper()}
                saved = {n: getattr(MODULE[kind], n) for n in constants}
                for n, value in constants.items():
                    setattr(MODULE[kind], n, value)
                try:
                    found = detect(series, **options).findings
                finally:  # the next setting sets its own
                    for n, value in saved.items():
                        setattr(MODULE[kind], n, value)
                out[key(setting)][name] = detection_tcpd.positions(series,
                                                                   [f.at for f in found])
    finally:
        anomalies._fit = fit
    return list(out.items())


# the detector modules each kind runs: its cache is keyed by their source only, so editing
# one detector does not throw away the other's sweep
SOURCES = {"anomalies": ("anomalies.py", "seasonal.py", "_rules.py", "numbers.py", "result.py"),
           "breakouts": ("breakouts.py", "seasonal.py", "_rules.py", "numbers.py", "result.py")}


def _cache_path(kind: str) -> Path:
    source = hashlib.sha256()
    for name in SOURCES[kind]:
        source.update((ROOT / "detectors" / name).read_bytes())
    return Path(tempfile.gettempdir()) / f"sweep-{kind}-{source.hexdigest()[:16]}.json"


def detections(kind: str) -> dict[str, dict[str, list[int]]]:
    """{setting key: {series: positions}} for every setting of SPACE[kind], computing only
    what the cache lacks."""
    path = _cache_path(kind)
    cache = json.loads(path.read_text()) if path.exists() else {}
    missing = [s for s in settings(kind) if key(s) not in cache]
    if missing:
        started = time.perf_counter()
        groups: dict[str, list[dict]] = {}
        for s in missing:  # grouped by their options; constants vary within a group
            groups.setdefault(key({n: v for n, v in s.items() if not n.isupper()}),
                              []).append(s)
        with Pool(PROCESSES) as pool:
            for results in pool.imap_unordered(_run_group,
                                               [(kind, g) for g in groups.values()]):
                cache.update(results)
        path.write_text(json.dumps(cache))
        print(f"{kind}: ran {len(missing)} settings in "
              f"{time.perf_counter() - started:.1f} s (cache {path})", file=sys.stderr)
    return {key(s): cache[key(s)] for s in settings(kind)}


# --- per-series scores --------------------------------------------------------------------


def nab_scores(found: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, dict]]:
    """{setting key: {file: {"profiles": ..., "window": ..., "category": ...}}}."""
    windows = json.loads((detection_nab.DATA / "labels" / "combined_windows.json").read_text())
    series = _series("anomalies")
    rows = {name: detection_nab.window_rows(s.index, windows[name]) for name, s in series.items()}
    out = {}
    for setting, per_file in found.items():
        out[setting] = {}
        for name, positions in per_file.items():
            n, detected = len(series[name]), set(positions)
            out[setting][name] = {
                "category": name.split("/")[0],
                "profiles": {p: detection_nab.file_score(n, rows[name], detected, w)
                             for p, w in detection_nab.PROFILES.items()},
                "window": detection_nab.window_counts(n, rows[name], detected),
            }
    return out


def tcpd_scores(found: dict[str, dict[str, list[int]]]) -> dict[str, dict[str, dict]]:
    """{setting key: {series: {"f1", "cover"}}}, for the series the benchmark averages."""
    annotations = json.loads((detection_tcpd.DATA / "annotations.json").read_text())
    series = _series("breakouts")
    out = {}
    for setting, per_series in found.items():
        out[setting] = {}
        for name, positions in per_series.items():
            if detection_tcpd.excluded(name):
                continue
            f1, _, _ = detection_tcpd.f_measure(annotations[name], positions)
            out[setting][name] = {"f1": f1, "cover": detection_tcpd.covering(
                annotations[name], positions, len(series[name]))}
    return out


# --- summaries and choice -----------------------------------------------------------------


def nab_summary(files: list[dict]) -> dict:
    """NAB standard score (pooled raw scores, normalised) and window P/R/F1 of some files."""
    tp = sum(f["window"]["tp"] for f in files)
    fp = sum(f["window"]["fp"] for f in files)
    fn = sum(f["window"]["fn"] for f in files)
    out = {"standard": detection_nab.normalised([f["profiles"]["standard"] for f in files])}
    out.update(detection_nab.prf(tp, fp, fn))
    out.update({"windows": tp + fn, "windows_found": tp, "false_positives": fp})
    return out


def tcpd_summary(rows: list[dict]) -> dict:
    return {"f1": sum(r["f1"] for r in rows) / len(rows),
            "cover": sum(r["cover"] for r in rows) / len(rows), "series": len(rows)}


# The selection rule, fixed before the search it judges (issue 12) and not to be changed
# after seeing out-of-fold figures. It reflects the targets rather than one score:
# - NAB: among the settings whose NAB standard score over the training files is at least
#   NAB_STANDARD_FLOOR (the target), the one with the highest window F1 over them
#   (the standard profile alone favours recall: a false alarm costs 0.11, a missed window
#   1, so it picks settings that alert three times out of four outside any window); ties
#   to the higher standard score, then the current default. When no setting reaches the
#   floor, the best standard score.
# - TCPD: the lowest mean rank over the training series and both measures: each series
#   ranks every setting by its F1 and by its Cover (ties share their mean rank), and the
#   ranks are averaged over series and measures; ties to the current default. One series
#   or a tiny difference in mean F1 cannot decide alone, and Cover counts as much as F1.
NAB_STANDARD_FLOOR = 65.0


def choose_nab(scores: dict[str, dict[str, dict]], files: list[str], default: str) -> str:
    """The committed rule above, over `files`."""
    summaries = {s: nab_summary([scores[s][f] for f in files]) for s in scores}
    qualified = [s for s in scores if summaries[s]["standard"] >= NAB_STANDARD_FLOOR]
    if not qualified:
        return max(scores, key=lambda s: (summaries[s]["standard"], s == default))
    return max(qualified, key=lambda s: (round(summaries[s]["f1"], 12),
                                         summaries[s]["standard"], s == default))


def choose_tcpd(scores: dict[str, dict[str, dict]], names: list[str], default: str) -> str:
    """The committed rule above, over `names`."""
    from scipy.stats import rankdata

    settings_ = list(scores)
    ranks = np.zeros(len(settings_))
    for name in names:
        for measure in ("f1", "cover"):
            # rank 1 = best: rank the negated figures, rounded so float noise is a tie
            figures = [-round(scores[s][name][measure], 12) for s in settings_]
            ranks += rankdata(figures)
    mean_rank = dict(zip(settings_, np.round(ranks / (2 * len(names)), 9)))
    return min(settings_, key=lambda s: (mean_rank[s], s != default))


# --- the in-sample sweep ------------------------------------------------------------------


def main() -> None:
    started = time.perf_counter()
    nab = nab_scores(detections("anomalies"))
    tcpd = tcpd_scores(detections("breakouts"))

    nab_files = sorted(next(iter(nab.values())))
    nab_table = sorted(((s, nab_summary([nab[s][f] for f in nab_files])) for s in nab),
                       key=lambda t: -t[1]["standard"])
    tcpd_names = sorted(next(iter(tcpd.values())))
    tcpd_table = sorted(((s, tcpd_summary([tcpd[s][n] for n in tcpd_names])) for s in tcpd),
                        key=lambda t: (-t[1]["f1"], -t[1]["cover"]))
    result = {"space": SPACE, "defaults": {k: defaults(k) for k in SPACE},
              "anomalies": [{"setting": json.loads(s), **v} for s, v in nab_table],
              "breakouts": [{"setting": json.loads(s), **v} for s, v in tcpd_table],
              "seconds": time.perf_counter() - started}

    for kind, table, columns in (("anomalies", nab_table, ("standard", "precision", "f1")),
                                 ("breakouts", tcpd_table, ("f1", "cover"))):
        default = key(defaults(kind))
        rank = [s for s, _ in table].index(default) + 1
        print(f"{kind}: {len(table)} settings, in-sample; current defaults rank {rank}")
        print("  " + "  ".join(f"{c:>9}" for c in columns) + "  setting")
        for setting, figures in table[:8] + [t for t in table if t[0] == default][:1]:
            mark = "  <- defaults" if setting == default else ""
            print("  " + "  ".join(f"{figures[c]:9.3f}" for c in columns)
                  + f"  {setting}{mark}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
