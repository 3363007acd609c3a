"""Severities, alert statuses, quantile keys and a partition's deadline are defined once and
imported everywhere else in monitors/ and store/, so a new severity or quantile cannot be
half-added."""
from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import monitors.intake.profile
import monitors.judge.evaluate
from monitors.intake.freshness import (
    arrival_delay_hours,
    partition_day_end,
    partition_due_at,
)
from store.models import AlertStatus, Severity

ROOT = Path(__file__).resolve().parents[2]
DEFINED_IN = ROOT / "store" / "models.py"


def _sources():
    for package in ("monitors", "store"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path != DEFINED_IN and "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(), filename=str(path))


def _literal_strings(node) -> set[str]:
    items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", [])
    return {e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def test_no_module_retypes_the_severities_or_the_statuses():
    retyped = []
    for enum in (Severity, AlertStatus):
        names = {m.value for m in enum}
        for path, tree in _sources():
            for node in ast.walk(tree):
                if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)) \
                        and len(_literal_strings(node) & names) >= 2:
                    retyped.append(f"{path.relative_to(ROOT)}:{node.lineno} ({enum.__name__})")
                # Literal["critical", "warning", ...] is a subscript over a tuple: caught above
    assert retyped == []


def test_the_quantile_keys_are_the_profiles_own():
    assert monitors.judge.evaluate.QUANTILE_KEYS is monitors.intake.profile.QUANTILE_KEYS
    assert monitors.intake.profile.QUANTILE_KEYS == ["min", *monitors.intake.profile.QUANTILES, "max", "count"]
    assigned = [f"{path.relative_to(ROOT)}:{node.lineno}" for path, tree in _sources()
                for node in ast.walk(tree) if isinstance(node, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "QUANTILE_KEYS" for t in node.targets)]
    assert assigned == ["monitors/intake/profile.py:" + assigned[0].rsplit(":", 1)[1]]


def test_a_partitions_day_end_and_due_time_are_computed_in_one_place():
    assert partition_day_end(dt.date(2026, 3, 1)) == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert partition_due_at(dt.date(2026, 3, 1), 6.5) == dt.datetime(2026, 3, 2, 6, 30, tzinfo=dt.UTC)
    assert arrival_delay_hours(dt.date(2026, 3, 1), dt.datetime(2026, 3, 2, 3, tzinfo=dt.UTC)) == 3.0
    # everyone else asks monitors.intake.freshness: no other "day after the partition, at midnight"
    elsewhere = []
    for path, tree in _sources():
        if path.name == "freshness.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "combine" \
                    and any(isinstance(a, ast.BinOp) for a in node.args):
                elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert elsewhere == []
