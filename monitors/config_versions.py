"""Config versions: every distinct normal form of the monitors config, kept with its text,
who brought it in and when, numbered v1, v2, ... in the order they were first seen.

A version is recorded where the config comes into force: a run (or a worker's config sync)
that finds a normal form not stored yet records it as a "file edit" (someone edited the
YAML by hand; the file's mtime says when), and a dashboard save records the new form under
the name of the person who saved it, before any run sees it. The normal form is the one
`MonitorsConfig.version_hash` hashes (defaults filled in, key order and comments gone), so
a version's text parses back to the same hash, and a past run can be replayed under it.

`diff_configs` says what changed between two versions in the config's own terms (datasets,
checks, monitors, options), not as a YAML text diff.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from monitors.config import MonitorsConfig, load_config, parse_config
from monitors.errors import Invalid, NotFound
from monitors.settings import Settings
from store.locks import lock_for_write
from store.models import ConfigVersion, utcnow

FILE_EDIT = "file edit"


def normal_text(config: MonitorsConfig) -> str:
    """The config's normal form as YAML: every setting spelled out, in the order the
    model declares them (so the same config always reads the same)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def record_version(session: Session, config: MonitorsConfig, settings: Settings | None = None,
                   *, by: str | None = None, now: dt.datetime | None = None) -> ConfigVersion:
    """The stored version of `config`, recorded now when it is new: introduced by `by`, or
    by a hand edit of the file (with its mtime, from `settings`) when no one is named."""
    digest = config.version_hash()
    found = _by_hash(session, digest)
    if found is not None:
        return found
    # two workers may meet a new form at once: the second waits, then finds the first's row
    lock_for_write(session)
    if session.connection().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE config_versions IN SHARE ROW EXCLUSIVE MODE"))
    found = _by_hash(session, digest)
    if found is not None:
        return found
    mtime = None
    if by is None and settings is not None and settings.config_path.exists():
        mtime = dt.datetime.fromtimestamp(settings.config_path.stat().st_mtime, dt.UTC)
    number = (session.scalar(select(func.max(ConfigVersion.number))) or 0) + 1
    version = ConfigVersion(number=number, hash=digest, text=normal_text(config),
                            introduced_by=by or FILE_EDIT, file_mtime_at=mtime,
                            introduced_at=now or utcnow())
    session.add(version)
    session.flush()
    return version


def _by_hash(session: Session, digest: str) -> ConfigVersion | None:
    return session.scalar(select(ConfigVersion).where(ConfigVersion.hash == digest))


def numbers_by_hash(session: Session) -> dict[str, int]:
    """Each stored hash's version number (a config has tens of versions, not millions)."""
    return dict(session.execute(select(ConfigVersion.hash, ConfigVersion.number)).all())


def get_version(session: Session, ref: str | int) -> ConfigVersion:
    """A version by number ("14", "v14", 14) or by its hash; NotFound otherwise."""
    raw = str(ref).strip()
    number = raw[1:] if raw[:1] in ("v", "V") else raw
    if number.isdigit():
        found = session.scalar(select(ConfigVersion).where(ConfigVersion.number == int(number)))
    else:
        found = _by_hash(session, raw)
    if found is None:
        raise NotFound(f"no config version {raw!r}: `config history` lists them")
    return found


def config_of(version: ConfigVersion) -> MonitorsConfig:
    """The config a version's text declares (file roots are not checked again: they were
    when it came into force, and a replay reads no files through it)."""
    return parse_config(version.text, f"config v{version.number}")


CURRENT = "current"


def resolve_config(session: Session, settings: Settings, ref: str) -> tuple[MonitorsConfig, int | str]:
    """The config a reference names, with its label: a version (number or hash), or
    "current", the file as it is now (its version number when it is recorded already; a
    file being edited may not be: "current (unrecorded)")."""
    if str(ref).strip().lower() == CURRENT:
        config = load_config(settings.config_path, settings)  # as a run loads it
        return config, numbers_by_hash(session).get(config.version_hash(), "current (unrecorded)")
    version = get_version(session, ref)
    return config_of(version), version.number


def version_before(session: Session, label: int | str) -> tuple[MonitorsConfig, int]:
    """The version recorded before `label` (the newest one for an unrecorded file)."""
    query = select(ConfigVersion).order_by(ConfigVersion.number.desc()).limit(1)
    if isinstance(label, int):
        query = query.where(ConfigVersion.number < label)
    found = session.scalar(query)
    if found is None:
        raise NotFound(f"config v{label} is the first version: name one to compare it with "
                       "(--against)")
    return config_of(found), found.number


def version_summary(version: ConfigVersion) -> dict[str, Any]:
    return {"version": version.number, "hash": version.hash,
            "introduced_by": version.introduced_by,
            "introduced_at": version.introduced_at.isoformat(),
            "file_mtime_at": version.file_mtime_at.isoformat() if version.file_mtime_at else None}


def list_versions(session: Session) -> list[dict[str, Any]]:
    """Every version, newest first, each with what changed from the one before."""
    versions = session.scalars(select(ConfigVersion).order_by(ConfigVersion.number)).all()
    rows, previous = [], None
    for version in versions:
        current = config_of(version)
        changes = (diff_configs(previous, current) if previous is not None
                   else [f"first version: {len(current.datasets)} dataset(s)"])
        rows.append({**version_summary(version), "changes": changes})
        previous = current
    return list(reversed(rows))


def validate_file(path: Path, settings: Settings) -> MonitorsConfig:
    """The checks a run makes on its config file (monitors.pipeline.run_config.config_for_runs): the same
    ConfigError, with the same message, and nothing written anywhere."""
    if not path.is_file():
        raise Invalid(f"no such file: {path}")
    return load_config(path, settings)


# ---- what changed between two versions --------------------------------------------------

def diff_configs(old: MonitorsConfig, new: MonitorsConfig) -> list[str]:
    """One line per change, in the config's terms: a dataset, check or monitor added or
    removed, or a setting's old and new value ("sales: monitor volume:anomalies option
    min_change: 0.1 -> 0.3")."""
    lines: list[str] = []
    before = {d.name: d for d in old.datasets}
    after = {d.name: d for d in new.datasets}
    for name in sorted(before.keys() - after.keys()):
        lines.append(f"dataset {name} removed")
    for name in sorted(after.keys() - before.keys()):
        declared = after[name]
        lines.append(f"dataset {name} added ({declared.format}, {len(declared.checks)} check(s), "
                     f"{len(declared.monitors)} monitor(s))")
    for name in sorted(before.keys() & after.keys()):
        a = before[name].model_dump(mode="json")
        b = after[name].model_dump(mode="json")
        for key in ("checks", "monitors"):
            lines += _diff_items(f"{name}: {key[:-1]}", _checks_by_label(before[name], after[name], key))
            a.pop(key), b.pop(key)
        lines += [f"{name}: {line}" for line in _diff_values("", a, b)]
    old_rest = old.model_dump(mode="json", exclude={"datasets"})
    new_rest = new.model_dump(mode="json", exclude={"datasets"})
    lines += _diff_values("", old_rest, new_rest)
    return lines


def _checks_by_label(old, new, key: str) -> tuple[dict[str, dict], dict[str, dict]]:
    def named(declared) -> dict[str, dict]:
        items = getattr(declared, key)
        return {(item.label() if key == "checks" else item.name): item.model_dump(mode="json")
                for item in items}
    return named(old), named(new)


def _diff_items(what: str, pair: tuple[dict[str, dict], dict[str, dict]]) -> list[str]:
    before, after = pair
    lines = [f"{what} {name} removed" for name in sorted(before.keys() - after.keys())]
    for name in sorted(after.keys() - before.keys()):
        item = after[name]
        subject = item.get("detector") or item.get("check")
        options = f" {_show(item['options'])}" if item.get("options") else ""
        lines.append(f"{what} {name} added ({subject}{options})")
    for name in sorted(before.keys() & after.keys()):
        lines += [f"{what} {name} {line}" for line in _diff_values("", before[name], after[name])]
    return lines


def _diff_values(path: str, old: Any, new: Any) -> list[str]:
    """Leaf by leaf: mappings are walked (`options` read as "option NAME"), lists of named
    mappings (contract columns) are matched by name, anything else is shown old -> new."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(old.keys() | new.keys(), key=str):
            if path.endswith("options"):  # "option min_change", not "options min_change"
                label = f"{path.removesuffix('options')}option {key}".strip()
            else:
                label = f"{path} {key}".strip()
            lines += _diff_values(label, old.get(key), new.get(key))
        return lines
    if _named_list(old) and _named_list(new):
        before = {item["name"]: item for item in old}
        after = {item["name"]: item for item in new}
        lines = [f"{path} {name} removed" for name in sorted(before.keys() - after.keys())]
        lines += [f"{path} {name} added" for name in sorted(after.keys() - before.keys())]
        for name in sorted(before.keys() & after.keys()):
            lines += _diff_values(f"{path} {name}", before[name], after[name])
        return lines
    return [f"{path}: {_show(old)} -> {_show(new)}"]


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) and "name" in v for v in value)


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)
