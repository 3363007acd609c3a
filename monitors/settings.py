"""Where things live, from the environment (DESIGN.md: the configuration contract)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one input may cost a worker, so that a small hostile or broken file
    (a gzip bomb, a YAML alias bomb, a header of 100k columns) is refused in seconds with the
    limit named, instead of exhausting memory or time. Each is overridable by the
    environment variable named beside it (`MONITORS_LIMIT_<NAME>`, upper case)."""
    # one line of a JSON-lines file, or one CSV row (the CSV reader's block is this size,
    # and its memory peaks at tens of times its block)
    line_bytes: int = 8 * MiB
    # a file's content after decompression, whatever its compressed size
    decompressed_bytes: int = 4096 * MiB
    # a compressed file's content: its size on disk hides what it costs, so a gzip just under
    # the ratio limit (20 MB at 199x: 4 GB) would otherwise be read for minutes. A plain file's
    # size is there to see, and only `decompressed_bytes` bounds it
    compressed_content_bytes: int = 1024 * MiB
    # decompressed / compressed size, checked once past `ratio_checked_after` bytes: real
    # data compresses 3-20 times, a bomb thousands of times
    compression_ratio: int = 200
    ratio_checked_after: int = 64 * MiB
    # columns of one batch, checked on the header before anything compares names
    columns: int = 4096
    # nodes of the monitors YAML once its aliases are expanded (a real config has hundreds)
    config_nodes: int = 100_000

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "Limits":
        values = {}
        for name in cls.__dataclass_fields__:
            variable = f"MONITORS_LIMIT_{name.upper()}"
            raw = environ.get(variable)
            if raw is None or not raw.strip():
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(f"{variable}={raw!r}: expected a whole number") from None
            if value <= 0:
                raise ValueError(f"{variable}={raw!r}: expected a number above 0")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path          # landing files, the SQLite file, the demo's ground truth
    db_url: str = field(repr=False)  # may carry the store's password
    config_path: Path   # the monitors YAML
    # the folders file datasets may read from (monitors.intake.file_roots), resolved
    file_roots: tuple[Path, ...]
    limits: Limits = Limits()

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
    return Settings(home=home, db_url=db_url, config_path=config_path, file_roots=file_roots,
                    limits=Limits.from_environment(environ))
