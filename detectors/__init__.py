"""Pure detection algorithms over pandas objects. No I/O, no database, no Streamlit.

The package root is the public surface; modules behind it are implementation.
"""
from detectors.anomalies import detect_anomalies
from detectors.breakouts import detect_breakouts
from detectors.checks import (allowed_values, conforms_to_types, expression, freshness,
                              in_range, matches_pattern, not_null, unique)
from detectors.drift import (CategoricalDrift, NumericDrift, categorical_drift,
                             categorical_profile, detect_drift, numeric_drift, numeric_profile)
from detectors.result import Detection, Finding
from detectors.thresholds import absolute_threshold, proportional_threshold

__all__ = ["Detection", "Finding", "detect_anomalies", "detect_breakouts",
           # static checks
           "not_null", "in_range", "allowed_values", "unique", "matches_pattern",
           "conforms_to_types", "freshness", "expression",
           # thresholds
           "absolute_threshold", "proportional_threshold",
           # drift from stored profiles
           "numeric_drift", "categorical_drift", "detect_drift", "numeric_profile",
           "categorical_profile", "NumericDrift", "CategoricalDrift"]
