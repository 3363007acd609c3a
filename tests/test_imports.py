"""The dependency direction of DESIGN.md: dashboard -> monitors -> (detectors, store),
no import cycle among the project's modules, pages that reach the rest only through the
dashboard's own modules, and a CLI that starts without the detectors' heavy libraries.

Read from the source with ast, so a forbidden import inside a function or behind a
TYPE_CHECKING guard is caught too, and nothing has to be importable to be checked.
"""
import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "detectors": {"monitors", "store", "dashboard", "streamlit", "sqlalchemy", "alembic"},
    "store": {"monitors", "dashboard", "streamlit", "detectors"},
    "monitors": {"dashboard", "streamlit"},
    "dashboard": {"detectors"},  # algorithms are reached through monitors
}
PACKAGES = ("monitors", "store", "detectors", "dashboard")
HEAVY = ("statsmodels", "scipy", "ruptures")
LATER = (*HEAVY, "pandas", "pyarrow", "alembic", "apscheduler", "datasketches", "plotly")


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


# ---- the import graph -------------------------------------------------------------------

def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """The project modules `path` imports, at module level or in a function: `from pkg
    import name` counts as importing `pkg.name` when that is a module, else `pkg`."""
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `.` is the package, each further dot one up
                parts = package.split(".")
                base = parts[:len(parts) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            found.update(f"{source}.{alias.name}" for alias in node.names)
    modules = set()
    for name in found:
        # the longest prefix that is a project module: `a.b.c` where only `a.b` exists is a.b
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if _is_module(candidate, root):
                modules.add(candidate)
                break
    modules.discard(here)
    return modules


def _is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def import_graph(root: Path, packages) -> dict[str, set[str]]:
    graph = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            graph[module_name(path, root)] = imported_modules(path, root)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (a depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done or module not in graph:
            return None
        path.append(module)
        for following in sorted(graph[module]):
            cycle = visit(following)
            if cycle:
                return cycle
        path.pop()
        done.add(module)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def test_no_import_cycle_among_the_project_modules():
    graph = import_graph(ROOT, PACKAGES)
    assert "monitors.lifecycle.alerts" in graph and graph["monitors.lifecycle.notify"] >= {"monitors.lifecycle.alerts"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from .. import c\n")
    (package / "c.py").write_text("import os\n\ndef later():\n    from pkg import a\n")
    (package / "d.py").write_text("from pkg.a import something\n")

    graph = import_graph(tmp_path, ["pkg"])

    assert graph["pkg.a"] == {"pkg.sub.b"}  # `from pkg.sub import b`: the module b
    assert graph["pkg.d"] == {"pkg.a"}      # `from pkg.a import name`: the module a
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    (package / "c.py").write_text("import os\n")
    assert find_cycle(import_graph(tmp_path, ["pkg"])) is None


def test_pages_import_only_dashboard_modules_of_the_project():
    offences = []
    for path in sorted((ROOT / "dashboard" / "views").glob("*.py")):
        outside = sorted(m for m in imported_modules(path, ROOT)
                         if m.split(".")[0] in PACKAGES and m.split(".")[0] != "dashboard")
        if outside:
            offences.append(f"{path.relative_to(ROOT)} imports {', '.join(outside)}")
    assert not offences, "a page reaches the rest through dashboard modules:\n" + "\n".join(offences)


def loaded_after(statement: str, modules) -> str:
    """Which of `modules` a fresh interpreter has loaded after running `statement`."""
    code = f"import sys; {statement}; print(sorted(m for m in {modules!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_cli_the_store_and_the_alert_lifecycle_start_without_the_detectors_libraries():
    assert loaded_after("import monitors.cli, monitors.lifecycle.alerts, store.queries", HEAVY) == "[]"


def test_the_cli_parser_loads_neither_pandas_nor_the_pipelines_libraries():
    # what makes `python -m monitors --help` quicker than `import pandas, sqlalchemy`
    # (bench/startup.py): each command imports its implementation when it runs
    assert loaded_after("import monitors.cli; monitors.cli.build_parser()", LATER) == "[]"


def test_frame_queries_import_pandas_themselves():
    # store.queries leaves pandas out of its imports (looking up a dataset needs none), so
    # a query that builds a frame must import it: a `pd` it does not import is a NameError
    tree = ast.parse((ROOT / "store" / "queries.py").read_text(encoding="utf-8"))
    missing = []
    for function in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        body = [node for statement in function.body for node in ast.walk(statement)]
        uses = any(isinstance(n, ast.Name) and n.id == "pd" for n in body)
        imports = any(isinstance(n, ast.Import) and any(a.asname == "pd" for a in n.names)
                      for n in body)
        if uses and not imports:
            missing.append(function.name)
    assert not missing, f"store.queries functions use pd without importing pandas: {missing}"
