"""Where things live, from the environment (DESIGN.md: the configuration contract)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path          # landing files, the SQLite file, the demo's ground truth
    db_url: str = field(repr=False)  # may carry the store's password
    config_path: Path   # the monitors YAML
    # the folders file datasets may read from (monitors.file_roots), resolved
    file_roots: tuple[Path, ...]

    @property
    def landing(self) -> Path:
        return self.home / "landing"


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    home = Path(environ.get("MONITORS_HOME") or "monitors_home").resolve()
    db_url = environ.get("MONITORS_DB_URL") or f"sqlite:///{home / 'monitors.db'}"
    config_path = Path(environ.get("MONITORS_CONFIG") or home / "monitors.yaml").resolve()
    # from the environment, not the monitors YAML: whoever may edit monitors (the dashboard
    # writes that file) must not be able to widen what the process reads
    listed = [p for p in (environ.get("MONITORS_FILE_ROOTS") or "").split(os.pathsep) if p.strip()]
    file_roots = tuple(Path(p).resolve() for p in listed) or (home,)
    return Settings(home=home, db_url=db_url, config_path=config_path, file_roots=file_roots)
