"""The dependency direction of DESIGN.md: dashboard -> monitors -> (detectors, store).

Read from the source with ast, so a forbidden import inside a function or behind a
TYPE_CHECKING guard is caught too, and nothing has to be importable to be checked.
"""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "detectors": {"monitors", "store", "dashboard", "streamlit", "sqlalchemy", "alembic"},
    "store": {"monitors", "dashboard", "streamlit", "detectors"},
    "monitors": {"dashboard", "streamlit"},
    "dashboard": set(),
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside its own package
                continue
            if node.module:
                roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            roots.add(node.args[0].value.split(".")[0])
    return roots


def package_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package):
    offences = []
    for path in package_files(package):
        bad = imported_roots(path) & FORBIDDEN[package]
        if bad:
            offences.append(f"{path.relative_to(ROOT)} imports {', '.join(sorted(bad))}")
    assert not offences, "\n".join(offences)


def test_the_checker_sees_imports_it_must_refuse(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom store.models import X\n"
                      "def f():\n    import streamlit as st\n"
                      "from . import sibling\n")
    assert imported_roots(sample) == {"os", "store", "streamlit"}


def test_detectors_public_names_resolve():
    detectors = importlib.import_module("detectors")
    assert len(detectors.__all__) == len(set(detectors.__all__)), "a name is exported twice"
    missing = [name for name in detectors.__all__ if not hasattr(detectors, name)]
    assert not missing, f"detectors.__all__ names what it does not define: {missing}"
    # the detector API of DESIGN.md, which the benchmarks call
    for name in ("Detection", "Finding", "detect_anomalies", "detect_breakouts"):
        assert name in detectors.__all__, f"{name} is not exported by detectors"
