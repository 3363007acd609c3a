"""Where things live, from the environment (DESIGN.md: the configuration contract)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path          # landing files, the SQLite file, the demo's ground truth
    db_url: str
    config_path: Path   # the monitors YAML

    @property
    def landing(self) -> Path:
        return self.home / "landing"


def load_settings(environ: Mapping[str, str] = os.environ) -> Settings:
    home = Path(environ.get("MONITORS_HOME") or "monitors_home").resolve()
    db_url = environ.get("MONITORS_DB_URL") or f"sqlite:///{home / 'monitors.db'}"
    config_path = Path(environ.get("MONITORS_CONFIG") or home / "monitors.yaml").resolve()
    return Settings(home=home, db_url=db_url, config_path=config_path)
