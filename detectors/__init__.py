"""Pure detection algorithms over pandas objects. No I/O, no database, no Streamlit.

The package root is the public surface; modules behind it are implementation. Names are
resolved on first use (PEP 562), so importing `detectors.result` or the registry does not
load statsmodels, scipy or ruptures: the CLI and the alert lifecycle start fast, and only a
run or a chart that detects pays for them.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "Detection": "detectors.result", "Finding": "detectors.result",
    "detect_anomalies": "detectors.anomalies", "detect_breakouts": "detectors.breakouts",
    **dict.fromkeys(("not_null", "in_range", "allowed_values", "unique", "matches_pattern",
                     "conforms_to_types", "freshness", "expression"), "detectors.checks"),
    **dict.fromkeys(("absolute_threshold", "proportional_threshold"), "detectors.thresholds"),
    **dict.fromkeys(("numeric_drift", "categorical_drift", "detect_drift", "numeric_profile",
                     "categorical_profile", "NumericDrift", "CategoricalDrift"),
                    "detectors.drift"),
}

__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'detectors' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
