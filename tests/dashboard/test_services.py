"""The dashboard's door: it reads the monitors YAML as a run does (parsed once, and again only
when the file changes), and it reaches algorithms and the config only through monitors."""
from __future__ import annotations

import ast
from pathlib import Path

from dashboard import services

DASHBOARD = Path(services.__file__).parent
PROJECT = ("dashboard", "monitors", "detectors", "store")


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    return names | {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}


def test_the_config_is_parsed_once_while_the_file_is_unchanged(demo):
    first = services._config()
    assert services._config() is first
    demo.config_path.write_text(demo.config_path.read_text() + "\n# touched\n")
    again = services._config()
    assert again is not first and again.version_hash() == first.version_hash()


def test_the_dashboard_never_imports_detectors_and_pages_import_only_the_dashboard():
    for path in DASHBOARD.rglob("*.py"):
        assert not any(m.split(".")[0] == "detectors" for m in imported(path)), path
    for page in (DASHBOARD / "views").glob("*.py"):
        project = {m for m in imported(page) if m.split(".")[0] in PROJECT}
        assert all(m.split(".")[0] == "dashboard" for m in project), (page, project)
