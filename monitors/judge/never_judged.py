"""Declared monitors and checks that can never judge anything: on a column the dataset
does not have, or on a metric nothing stores. Such a monitor used to be silent (never
evaluated) or to fail every run; it is a warning instead, said where a person looks:
`config validate`, the worker's log when the config is loaded, and every run's log.

The metric names are listed here, without importing the profiler (the config is read by
light commands); tests/monitors/test_never_judged.py checks the list against what the
profiler, ingestion and the performance module really store.
"""
from __future__ import annotations

from monitors.config import DatasetConfig, MonitorsConfig
from monitors.contract import Contract

# a column's profile (monitors.intake.profile, monitors.intake.pushdown)
COLUMN_METRICS = frozenset({
    "count", "nulls", "null_fraction", "distinct", "mean", "std", "min", "max",
    "p01", "p05", "p25", "p50", "p75", "p95", "p99", "zeros", "negatives", "infinite",
    "length_min", "length_mean", "length_max", "freq", "freq_other"})
# a batch as a whole (profile, ingest), and a model output's realised and estimated
# performance (monitors.judge.performance)
TABLE_METRICS = frozenset({"row_count", "column_count", "arrival_delay_hours"})
PERFORMANCE_METRICS = frozenset({
    "auc", "average_precision", "brier", "log_loss", "ece", "precision", "recall", "f1",
    "positive_rate", "coverage", "labelled", "reliability_rows", "reliability_score",
    "reliability_rate", "hist_positive", "hist_negative", "hist_scores",
    "estimated_auc", "estimated_auc_lower", "estimated_auc_upper"})
KNOWN_METRICS = COLUMN_METRICS | TABLE_METRICS | PERFORMANCE_METRICS
# names listed in a warning, beyond which only a count is given
LISTED = 12


def _listed(names) -> str:
    names = sorted(names)
    shown = ", ".join(names[:LISTED])
    return shown + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def never_judged(declared: DatasetConfig, contract: Contract | None) -> list[str]:
    """One line per declared monitor or check of `declared` that can never judge: an
    unknown metric, or (when the columns are known: `contract`) a column the dataset lacks."""
    columns = {c.name for c in contract.columns} if contract and contract.columns else None
    lines = []

    def column_missing(what: str, column: str) -> None:
        if columns is not None and column not in columns:
            lines.append(f"{what} on dataset {declared.name}: no column {column}; "
                         f"columns are {_listed(columns)}")

    for monitor in declared.monitors:
        what = f"monitor {monitor.name}"
        if monitor.metric not in KNOWN_METRICS:
            lines.append(f"{what} on dataset {declared.name}: unknown metric {monitor.metric}; "
                         f"metrics are {', '.join(sorted(COLUMN_METRICS | TABLE_METRICS))} (and a "
                         "model output's performance)")
        elif monitor.column is not None:
            column_missing(what, monitor.column)
    for check in declared.checks:
        for column in check.columns or ([check.column] if check.column else []):
            column_missing(f"check {check.label()}", column)
    return lines


def config_warnings(config: MonitorsConfig) -> list[str]:
    """`never_judged` for every dataset of a config, judged on the contracts it declares
    (a dataset whose contract comes from its first batch is judged by its runs)."""
    return [line for declared in config.datasets
            for line in never_judged(declared, declared.contract)]
