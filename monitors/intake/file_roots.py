"""File sources stay inside the configured roots (MONITORS_FILE_ROOTS, default MONITORS_HOME).

A path is judged by where it really leads: `..` and symlinks are resolved first, so a
landing folder or a delivered file cannot reach outside the roots through a link. Every
place where a path enters (the config, the ingest command, a run reading a landing folder)
asks `inside_roots`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class OutsideRoots(ValueError):
    """A path that resolves outside every file root; nothing is read from it."""

    def __init__(self, path: Path, resolved: Path, roots: Sequence[Path]):
        self.path, self.resolved, self.roots = path, resolved, tuple(roots)
        leads = "" if resolved == path else f" (it leads to {resolved})"
        super().__init__(f"{path}{leads} is outside the file roots "
                         f"{', '.join(str(r) for r in roots)}; "
                         "MONITORS_FILE_ROOTS lists the folders files may be read from")


def inside_roots(path: Path, roots: Sequence[Path]) -> Path:
    """The path resolved (symlinks followed, `..` removed), or OutsideRoots. The roots are
    expected resolved already (Settings.file_roots are)."""
    resolved = Path(path).resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise OutsideRoots(Path(path), resolved, roots)
    return resolved
